"""Step caching: the wrapper computes what the UNet computes on its full calls, reuses deep features in
between, never touches the shared UNet, and is a request field like any other."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import tiny_models as tm
from pipelines.fast.step_cache import StepCachedUNet

# T2I-Adapter residual shapes for a (2, 4, 16, 16) latent: one per down block, at the size the UNet adds it
ADAPTER_SHAPES = {"sd1": [(32, 16), (32, 8), (64, 4), (64, 2)], "sd2": [(32, 16), (32, 8), (64, 4), (64, 2)],
                  "sdxl": [(32, 8), (64, 8), (64, 4)]}


def _inputs(family, unet, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, 16, 16, generator=g)
    hidden = torch.randn(2, 77, unet.config.cross_attention_dim, generator=g)
    time_ids = torch.tensor([[512.0, 512, 0, 0, 512, 512]] * 2)
    added = {"text_embeds": torch.randn(2, 64, generator=g), "time_ids": time_ids} if family == "sdxl" else None
    adapter = [torch.randn(2, c, s, s, generator=g) * 0.5 for c, s in ADAPTER_SHAPES[family]]
    return x, hidden, added, adapter


@pytest.mark.parametrize("family", tm.FAMILIES)
def test_full_calls_are_the_unets_own_output(family):
    unet = tm.tiny_components(family)["unet"]
    x, hidden, added, adapter = _inputs(family, unet)
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    with torch.inference_mode():
        for residuals in (None, adapter):
            copy = lambda: [r.clone() for r in residuals] if residuals else None  # noqa: E731 (the UNet pops them)
            reference = unet(x, 700, hidden, added_cond_kwargs=added,
                             down_intrablock_additional_residuals=copy()).sample
            wrapped = StepCachedUNet(unet, 1)
            out = wrapped(x, 700, hidden, added_cond_kwargs=added, down_intrablock_additional_residuals=copy())
            assert torch.equal(out.sample, reference)
            assert torch.equal(wrapped(x, 700, hidden, added_cond_kwargs=added, return_dict=False,
                                       down_intrablock_additional_residuals=copy())[0], reference)
    assert all(torch.equal(v, before[k]) for k, v in unet.state_dict().items())
    assert not unet._forward_hooks and not unet._forward_pre_hooks


def test_cached_calls_reuse_deep_features_and_refresh_on_schedule():
    unet = tm.tiny_components("sd1")["unet"]
    x, hidden, _, _ = _inputs("sd1", unet)
    wrapped = StepCachedUNet(unet, 3)
    with torch.inference_mode():
        outs = [wrapped(x + 0.01 * k, 900 - 20 * k, hidden).sample for k in range(7)]
        exact = [unet(x + 0.01 * k, 900 - 20 * k, hidden).sample for k in range(7)]
    assert (wrapped.calls, wrapped.full_calls) == (7, 3)  # calls 0, 3 and 6 in full
    for k in (0, 3, 6):
        assert torch.equal(outs[k], exact[k])
    for k in (1, 2, 4, 5):
        error = (outs[k] - exact[k]).abs().mean() / exact[k].abs().mean()
        assert 0 < error < 0.5, (k, error)
    with torch.inference_mode():  # a batch of another size cannot use the cache: a full call
        single = wrapped(x[:1], 500, hidden[:1]).sample
    assert torch.equal(single, unet(x[:1], 500, hidden[:1]).sample) and wrapped.full_calls == 4


def test_high_noise_calls_always_run_in_full():
    unet = tm.tiny_components("sd1")["unet"]
    x, hidden, _, _ = _inputs("sd1", unet)
    wrapped = StepCachedUNet(unet, 3, full_above=700)
    with torch.inference_mode():
        for t in (900, 800, 650, 600, 550, 500, 450):
            wrapped(x, torch.tensor(t), hidden)
    assert (wrapped.calls, wrapped.full_calls) == (7, 3)  # 900 and 800 (above), then every 3rd: 550


def test_interval_is_checked():
    unet = tm.tiny_components("sd1")["unet"]
    for bad in (0, 11, 2.0, True):
        with pytest.raises(ValueError, match="interval"):
            StepCachedUNet(unet, bad)


def test_pipelines_read_the_unet_through_the_wrapper():
    unet = tm.tiny_components("sdxl")["unet"]
    wrapped = StepCachedUNet(unet, 2)
    assert wrapped.config is unet.config and wrapped.dtype == unet.dtype
    assert wrapped.add_embedding is unet.add_embedding


@pytest.fixture(scope="module")
def cached_results(registry):
    from pipelines import GenerationRequest

    request = GenerationRequest(prompt="a large red circle in the center on a white background", steps=12,
                                scheduler="DPM++ 2M", seed=3)
    return {n: registry.generate(request.with_(step_cache=n)) for n in (0, 1, 3)}


def test_step_cache_in_a_request(cached_results):
    pixels = {n: np.asarray(result.images[0], dtype=int) for n, result in cached_results.items()}
    assert np.array_equal(pixels[0], pixels[1])  # interval 1: every call in full
    difference = np.abs(pixels[3] - pixels[0]).mean()
    assert 0 < difference < 20, difference


def test_step_cache_is_written_and_read_back(cached_results):
    from pipelines.metadata import parse_parameters, png_text_chunks, read_png_info

    path = cached_results[3].items[0].path
    assert read_png_info(path)["step_cache"] == 3
    parameters = png_text_chunks(path)["parameters"]
    assert "Step cache: 3" in parameters and parse_parameters(parameters)["step_cache"] == 3
    assert "Step cache" not in png_text_chunks(cached_results[0].items[0].path)["parameters"]


@pytest.mark.parametrize("value", [-1, 11, 2.5, True])
def test_bad_step_cache_is_refused(registry, value):
    from pipelines import GenerationRequest, InvalidRequest

    with pytest.raises(InvalidRequest, match="^step_cache: "):
        registry.validate(GenerationRequest(prompt="a red circle", step_cache=value))

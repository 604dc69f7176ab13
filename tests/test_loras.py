"""LoRA on a shared base: active with its weight inside the scope, gone without a trace after it; kohya
files behave like diffusers ones; mistakes are named; two LoRA runs never mix."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from dreambooth_support import (images, kohya_from_diffusers, load_shapes, pipeline_from, random_lora,
                                random_lora_state, tiny_components)

from pipelines.loras import LoraCache, lora_scope
from pipelines.requests import InvalidRequest


@pytest.fixture(scope="module")
def base():
    return pipeline_from(load_shapes())


@pytest.fixture(scope="module")
def loras(base, tmp_path_factory):
    root = tmp_path_factory.mktemp("loras")
    return {name: random_lora(base.unet, root / name, seed=seed) for seed, name in enumerate(("one", "two"))}


def run(pipeline):
    return images(pipeline, size=64, steps=3)


def test_load_then_unload_restores_the_base_exactly(base, loras):
    before = run(base)
    weights_before = {k: v.clone() for k, v in base.unet.state_dict().items()}
    with lora_scope(base, [(str(loras["one"]), 1.0)]):
        inside = run(base)
    assert np.abs(inside - before).max() > 0.05
    assert np.array_equal(run(base), before)
    after = base.unet.state_dict()
    assert set(after) == set(weights_before) and all(torch.equal(after[k], weights_before[k]) for k in after)


def test_weight_scales_the_effect(base, loras):
    before = run(base)
    outputs = {}
    for weight in (0.0, 0.5, 1.0):
        with lora_scope(base, [(str(loras["one"]), weight)]):
            outputs[weight] = run(base)
    assert np.allclose(outputs[0.0], before, atol=1e-6)
    assert 0 < np.abs(outputs[0.5] - before).max() < np.abs(outputs[1.0] - before).max() + 1e-6
    assert np.abs(outputs[0.5] - outputs[1.0]).max() > 0.02


def test_two_loras_together_and_the_cache(base, loras):
    cache = LoraCache()
    pair = [(str(loras["one"]), 0.7), (str(loras["two"]), 0.7)]
    with lora_scope(base, pair, cache=cache):
        both = run(base)
    with lora_scope(base, pair[:1], cache=cache):
        first = run(base)
    assert np.abs(both - first).max() > 0.02
    with lora_scope(base, pair, cache=cache):
        assert np.array_equal(run(base), both)  # cached state dicts give the same result


def test_kohya_file_matches_the_diffusers_file(base, loras, tmp_path):
    from safetensors.torch import load_file, save_file

    kohya = tmp_path / "style_kohya.safetensors"
    save_file(kohya_from_diffusers(load_file(str(loras["one"] / "pytorch_lora_weights.safetensors"))), str(kohya))
    with lora_scope(base, [(str(loras["one"]), 0.8)]):
        diffusers_format = run(base)
    with lora_scope(base, [(str(kohya), 0.8)]):
        kohya_format = run(base)
    assert np.abs(kohya_format - diffusers_format).max() < 1e-4


def test_a_convolution_lora_in_both_formats_and_gone_after(base, tmp_path):
    """LoRAs on the ResNet convolutions too (what DreamBooth here trains; kohya's "LoCon" files)."""
    from safetensors.torch import save_file

    state = random_lora_state(base.unet, seed=5, convs=True)
    assert any(value.ndim == 4 for value in state.values())
    save_file(state, str(tmp_path / "locon.safetensors"))
    save_file(kohya_from_diffusers(state), str(tmp_path / "locon_kohya.safetensors"))
    before = run(base)
    with lora_scope(base, [(str(tmp_path / "locon.safetensors"), 0.8)]):
        diffusers_format = run(base)
    with lora_scope(base, [(str(tmp_path / "locon_kohya.safetensors"), 0.8)]):
        kohya_format = run(base)
    assert np.abs(diffusers_format - before).max() > 0.05
    assert np.abs(kohya_format - diffusers_format).max() < 1e-4
    assert np.array_equal(run(base), before)


def test_mistakes_are_named_and_leave_the_base_clean(base, loras, tmp_path):
    from safetensors.torch import save_file

    before = run(base)
    with pytest.raises(InvalidRequest, match="loras.*between"):
        with lora_scope(base, [(str(loras["one"]), 9.0)]):
            pass
    with pytest.raises(InvalidRequest, match="loras.*no LoRA weights"):
        with lora_scope(base, [(str(tmp_path / "missing.safetensors"), 1.0)]):
            pass
    other = tmp_path / "for_another_model.safetensors"
    save_file(random_lora_state(tiny_components("sdxl")["unet"]), str(other))
    with pytest.raises(InvalidRequest, match="does not fit this model"):
        with lora_scope(base, [(str(loras["one"]), 1.0), (str(other), 1.0)]):
            pass
    assert np.array_equal(run(base), before)


def test_a_second_scope_on_the_same_model_is_refused_not_mixed(base, loras):
    other_pipeline = pipeline_from(base.components)  # shares the modules, as the registry's pipelines do
    with lora_scope(base, [(str(loras["one"]), 1.0)]):
        with pytest.raises(RuntimeError, match="lock"):
            with lora_scope(other_pipeline, [(str(loras["two"]), 1.0)]):
                pass
        assert base.get_list_adapters()["unet"] == ["studio_lora_0"]


def test_concurrent_requests_with_different_loras_see_only_their_own(base, loras):
    alone = {}
    for name in loras:
        with lora_scope(base, [(str(loras[name]), 1.0)]):
            alone[name] = run(base)
    model_lock, results, errors = threading.Lock(), {}, []

    def request(name):
        try:
            pipeline = pipeline_from(base.components)  # a pipeline per request over the shared weights
            for _ in range(2):
                with model_lock, lora_scope(pipeline, [(str(loras[name]), 1.0)]):
                    results.setdefault(name, []).append(run(pipeline))
        except Exception as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=request, args=(name,)) for name in loras]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for name in loras:
        assert all(np.array_equal(image, alone[name]) for image in results[name])


def test_cli_lora_values_parse():
    from pipelines.loras import parse_lora_spec

    assert parse_lora_spec("styles/ink.safetensors:0.6") == ("styles/ink.safetensors", 0.6)
    assert parse_lora_spec("hearts-lora") == ("hearts-lora", 1.0)
    assert parse_lora_spec(r"C:\loras\ink.safetensors") == (r"C:\loras\ink.safetensors", 1.0)
    assert parse_lora_spec(r"C:\loras\ink.safetensors:-0.5") == (r"C:\loras\ink.safetensors", -0.5)
    with pytest.raises(InvalidRequest, match="loras"):
        parse_lora_spec("")

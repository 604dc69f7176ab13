"""The fast paths keep the picture: channels_last and fused QKV compute what the plain UNet does, a LoRA still
applies on a fused model, torch.compile announces each new shape,
and the bundled model's judged accuracy holds in bfloat16 and with the step cache."""
from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
import torch

import tiny_models as tm
from pipelines.fast import paths as fast_paths
from pipelines.fast.compiled import CompiledUNet


def _unet_inputs(unet):
    g = torch.Generator().manual_seed(0)
    return torch.randn(2, 4, 16, 16, generator=g), torch.randn(2, 77, unet.config.cross_attention_dim, generator=g)


def test_channels_last_and_fused_qkv_compute_the_same():
    components = tm.tiny_components("sd1")
    unet = components["unet"]
    x, hidden = _unet_inputs(unet)
    with torch.inference_mode():
        reference = unet(x, 500, hidden).sample
        fast_paths.apply(components, fast_paths.FastPaths(torch.float32, channels_last=True, fuse_qkv=True))
        assert fast_paths.is_fused(unet) and unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
        assert torch.allclose(unet(x, 500, hidden).sample, reference, atol=1e-5)
        with fast_paths.unfused(unet):
            assert not fast_paths.is_fused(unet)
            assert torch.allclose(unet(x, 500, hidden).sample, reference, atol=1e-5)
    assert fast_paths.is_fused(unet)


def test_a_lora_applies_on_a_model_with_fused_projections(tmp_path):
    """Fused attention reads to_qkv, where the LoRA is not: the registry unfuses for LoRA runs."""
    from dreambooth_support import random_lora
    from pipelines import GenerationRequest, PipelineRegistry

    folder = tm.save_model("sd1", tmp_path / "sd1")
    lora = random_lora(tm.tiny_components("sd1")["unet"], tmp_path / "lora", seed=3)
    request = GenerationRequest(prompt="a red circle", model=str(folder), scheduler="DDIM", steps=3,
                                width=256, height=256, seed=2)
    fused = PipelineRegistry(models_dir=None, device="cpu", dtype="float32", save_outputs=False)
    plain_paths = fused.fast_paths_for
    fused.fast_paths_for = lambda family: dataclasses.replace(plain_paths(family), fuse_qkv=True)
    plain = PipelineRegistry(models_dir=None, device="cpu", dtype="float32", save_outputs=False)
    pixels = lambda registry, r: np.asarray(registry.generate(r).images[0], dtype=int)  # noqa: E731
    with_lora = request.with_(loras=[(str(lora), 1.0)])
    assert np.abs(pixels(fused, with_lora) - pixels(plain, with_lora)).max() <= 1
    assert np.abs(pixels(fused, with_lora) - pixels(fused, request)).mean() > 1, "the LoRA must change the image"
    assert fast_paths.is_fused(fused.load(str(folder)).components["unet"]), "fused again after the LoRA run"


def test_compile_is_announced_once_per_shape(caplog):
    unet = tm.tiny_components("sdxl")["unet"]
    notices = []
    compiled = CompiledUNet(unet, backend="eager", notify=notices.append)  # dynamo traces; no C++ build
    added = {"text_embeds": torch.zeros(2, 64), "time_ids": torch.zeros(2, 6)}
    x, hidden = _unet_inputs(unet)
    with torch.inference_mode(), caplog.at_level(logging.WARNING, logger="pipelines.fast"):
        first = compiled(x, 500, hidden, added_cond_kwargs=added).sample
        compiled(x, 400, hidden, added_cond_kwargs=added)
        assert len(notices) == 1 and "16x16 latents, batch 2" in notices[0]
        compiled(torch.randn(2, 4, 8, 8), 400, hidden, added_cond_kwargs=added)
        reference = unet(x, 500, hidden, added_cond_kwargs=added).sample
    assert len(notices) == 2 and "compiling the UNet" in caplog.text
    assert torch.allclose(first, reference, atol=1e-5)


@pytest.fixture(scope="module")
def judged():
    """Judged accuracy (mean of the five attributes) on 32 held-out prompts per setting (bench/accuracy.py)."""
    from bench.accuracy import judged as measure, registry_for
    from pipelines.shapes.world import evaluation_prompts

    cases = evaluation_prompts(32, seed=77)
    float32 = registry_for("float32", False)
    return {"float32": measure(float32, cases)["accuracy"],
            "bfloat16": measure(registry_for("bfloat16", True), cases)["accuracy"],
            "step cache 2": measure(float32, cases, step_cache=2)["accuracy"]}


@pytest.mark.slow
def test_bfloat16_keeps_judged_accuracy(judged):
    assert judged["float32"] >= 0.9 and judged["bfloat16"] >= judged["float32"] - 0.02, judged


@pytest.mark.slow
def test_step_cache_keeps_judged_accuracy(judged):
    assert judged["step cache 2"] >= judged["float32"] - 0.05, judged

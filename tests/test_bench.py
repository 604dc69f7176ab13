"""The benchmark's machinery (no timings are asserted: speed lives in `python -m bench`, not in tests)."""
from __future__ import annotations

import math

import pytest
import torch


def test_worker_runs_both_sides_on_the_same_work():
    from bench.worker import head_to_head, start

    plan = {"model": "shapes", "device": "cpu", "size": 64, "steps": 3, "repeats": 1,
            "samplers": ["Euler a", "DDIM"], "adapter": True, "step_cache": [2], "sides": ["studio", "diffusers"]}
    found = head_to_head(plan)
    assert found["studio"]["settings"] == found["diffusers"]["settings"] == "float32"  # the bundled model
    for side in ("studio", "diffusers"):
        jobs = found[side]["jobs"]
        assert {"txt2img Euler a", "txt2img DDIM", "adapter Euler a"} <= set(jobs)
        assert all(job["s_per_image"] > 0 and job["steps_per_s"] > 0 for job in jobs.values())
        assert found[side]["switch_sampler_s"] > 0 and found[side]["switch_adapter_s"] > 0
    assert "txt2img Euler a +step cache 2" in found["studio"]["jobs"]
    alone = start({**plan, "side": "studio", "start": True})
    assert alone["load_s"] > 0 and alone["first_image_s"] > 0 and alone["peak_rss_gib"] > 0.1


def test_table_pairs_each_figure_with_its_diffusers_counterpart():
    from bench.suite import rows, table

    results = {"plans": {"sd15": {"size": 512, "steps": 25}}, "models": {"sd15": {
        "studio": {"settings": "float16", "load_s": 2.0, "peak_rss_gib": 3.0, "together": True,
                   "jobs": {"txt2img DPM++ 2M": {"s_per_image": 0.5, "steps_per_s": 60.0},
                            "txt2img DPM++ 2M +step cache 3": {"s_per_image": 0.25, "steps_per_s": 120.0}}},
        "diffusers": {"settings": "float16", "load_s": 4.0, "peak_rss_gib": 6.0,
                      "jobs": {"txt2img DPM++ 2M": {"s_per_image": 1.0, "steps_per_s": 30.0}}}}}}
    by_figure = {row[0]: row for row in rows(results)}
    assert by_figure["load_s"][5] == 2.0
    assert by_figure["s/image txt2img DPM++ 2M"][5] == 2.0 and by_figure["steps/s txt2img DPM++ 2M"][5] == 2.0
    assert by_figure["s/image txt2img DPM++ 2M +step cache 3"][4] == 1.0  # beside plain diffusers' figure
    assert by_figure["peak_rss_gib"][5] == 2.0
    assert "| s/image txt2img DPM++ 2M | sd15 | 512px 25 steps | 0.500 | 1.000 | 2.00x |" in table(results)


def test_random_weights_keep_activations_tame():
    from diffusers import UNet2DConditionModel

    from bench.models import _tame
    from tiny_models import unet_config

    unet = _tame(UNet2DConditionModel.from_config(unet_config("sd1")), 0)
    norm = unet.down_blocks[0].resnets[0].norm1
    assert torch.equal(norm.weight, torch.ones_like(norm.weight)) and not norm.bias.any()
    weight = unet.down_blocks[0].resnets[0].conv1.weight
    assert weight.std().item() == pytest.approx(1 / math.sqrt(weight[0].numel()), rel=0.1)
    with torch.inference_mode():
        out = unet(torch.randn(2, 4, 16, 16), 500, torch.randn(2, 77, 32)).sample
    assert torch.isfinite(out).all() and 0.01 < out.std() < 100


def test_unet_ops_accounts_a_step_by_kind_of_operation():
    from diffusers import UNet2DConditionModel

    from bench.unet_ops import kind_of, step_profile
    from tests.tiny_models import unet_config

    assert kind_of("aten::_scaled_dot_product_flash_attention_for_cpu") == "attention"
    assert kind_of("aten::mkldnn_convolution") == "convolution" and kind_of("aten::addmm") == "linear"
    assert kind_of("aten::silu") == "other"
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**unet_config("sd1")).eval()
    sample = torch.randn(2, unet.config.in_channels, 16, 16)
    context = torch.randn(2, 77, unet.config.cross_attention_dim)
    seconds = step_profile(unet, sample, torch.tensor(10), context)
    assert set(seconds) == {"attention", "convolution", "linear", "layout and dtype copies", "other"}
    assert seconds["attention"] > 0 and seconds["convolution"] > 0 and seconds["linear"] > 0

"""Assembling the bundled model (training/shapes/export.py): a weight baked into an adapter gives what
diffusers' own adapter pipeline gives when it runs the unbaked adapter at that weight."""
from __future__ import annotations

import argparse
import copy
import pathlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from training.shapes.export import parse_scales
from training.shapes.train_adapter import scale_residuals

BUNDLED = "assets/shapes"


def _sketch() -> Image.Image:
    image = Image.new("RGB", (64, 64), "black")
    ImageDraw.Draw(image).ellipse((12, 20, 40, 48), outline="white", width=2)
    return image


def test_a_baked_adapter_weight_equals_diffusers_adapter_conditioning_scale():
    from diffusers import StableDiffusionAdapterPipeline, StableDiffusionPipeline, T2IAdapter

    base = StableDiffusionPipeline.from_pretrained(BUNDLED, dtype=torch.float32)
    adapter = T2IAdapter.from_pretrained(f"{BUNDLED}/adapters/sketch", dtype=torch.float32)
    baked = copy.deepcopy(adapter)
    scale_residuals(baked, 1.6)

    def run(which, scale):
        parts = {name: base.components[name] for name in ("vae", "text_encoder", "tokenizer", "unet", "scheduler")}
        pipe = StableDiffusionAdapterPipeline(**parts, adapter=which, safety_checker=None, feature_extractor=None,
                                              requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        out = pipe("a red circle", image=_sketch(), height=64, width=64, num_inference_steps=3,
                   adapter_conditioning_scale=scale, generator=torch.Generator().manual_seed(0), output_type="np")
        return out.images[0]

    reference = run(adapter, 1.6)
    assert np.abs(run(baked, 1.0) - reference).max() < 1e-4
    assert np.abs(run(adapter, 1.0) - reference).max() > 0.02  # the weight really changes the picture


def test_adapter_scales_are_parsed_by_kind_and_refused_when_malformed():
    parser = argparse.ArgumentParser()
    assert parse_scales(parser, ["sketch=1.6", "depth=1.2"]) == {"sketch": 1.6, "depth": 1.2}
    for bad in ("sketch", "paint=1.5", "edge=0", "edge=-1", "edge=x"):
        with pytest.raises(SystemExit):
            parse_scales(parser, [bad])


def test_update_replaces_only_the_unet_and_the_adapters(tmp_path, capsys):
    import shutil

    from diffusers import T2IAdapter, UNet2DConditionModel
    from safetensors.torch import load_file

    from training.shapes.export import main

    model = tmp_path / "model"
    shutil.copytree(BUNDLED, model)
    run, adapters = tmp_path / "run", tmp_path / "adapters"
    unet = UNet2DConditionModel.from_pretrained(f"{BUNDLED}/unet", dtype=torch.float32)
    with torch.no_grad():
        unet.conv_out.bias.add_(0.25)  # a "trained" UNet that differs from the bundled one
    unet.save_pretrained(run / "unet")
    T2IAdapter.from_pretrained(f"{BUNDLED}/adapters/sketch", dtype=torch.float32).save_pretrained(adapters / "sketch")

    main(["--update", "--unet", str(run), "--adapters", str(adapters), "--out", str(model),
          "--adapter-scale", "sketch=2"])
    weights = "diffusion_pytorch_model.safetensors"
    new_unet, old_unet = load_file(model / "unet" / weights), load_file(f"{BUNDLED}/unet/{weights}")
    assert new_unet["conv_out.bias"].dtype == torch.float16
    assert torch.allclose(new_unet["conv_out.bias"].float(), old_unet["conv_out.bias"].float() + 0.25, atol=2e-3)
    new_sketch = load_file(model / "adapters/sketch" / weights)
    old_sketch = load_file(f"{BUNDLED}/adapters/sketch/{weights}")
    assert torch.equal(new_sketch["adapter.conv_in.weight"], old_sketch["adapter.conv_in.weight"] * 2)
    kept_files = ("text_encoder/model.safetensors", f"vae/{weights}", "tokenizer/vocab.json",
                  f"adapters/edge/{weights}")
    for kept in kept_files:
        assert (model / kept).read_bytes() == (pathlib.Path(BUNDLED) / kept).read_bytes(), kept
    with pytest.raises(SystemExit):
        main(["--update", "--adapters", str(adapters), "--out", str(model)])  # --unet missing
    untouched = tmp_path / "untouched"
    shutil.copytree(BUNDLED, untouched)
    with pytest.raises(SystemExit):  # a scale for an adapter not given: refused before anything is written
        main(["--update", "--unet", str(run), "--adapters", str(adapters), "--out", str(untouched),
              "--adapter-scale", "depth=1.5"])
    assert "no depth adapter run" in capsys.readouterr().err
    assert (untouched / "unet" / weights).read_bytes() == (pathlib.Path(BUNDLED) / "unet" / weights).read_bytes()

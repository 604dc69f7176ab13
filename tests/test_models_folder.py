"""The model catalog: built-in keys, the models folder (diffusers folders, training checkpoints, single
files, LoRAs), models given as paths, and the clear error for weights that are not on this machine."""
from __future__ import annotations

import json
import shutil

import huggingface_hub.constants
import numpy as np
import pytest
from PIL import Image

from pipelines import InvalidRequest, ModelNotAvailable, PipelineRegistry
from pipelines.catalog import SHAPES_DIR


def same(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))


def pngs(root) -> list:
    return sorted(p for p in root.rglob("*.png")) if root.exists() else []


def test_catalog_lists_builtin_models(registry):
    names = registry.model_names()
    assert names[:4] == ["shapes", "sd15", "sd21", "sdxl"]
    shapes = registry.model_info("shapes")
    assert shapes.family == "shapes" and shapes.available and shapes.source == str(SHAPES_DIR)
    assert registry.model_info("sdxl").family == "sdxl"
    assert registry.model_info("sd15").repo_id == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert registry.limits("sdxl").min_size == 512 and registry.limits("sd15").max_size == 1024
    assert registry.limits("shapes").default_width == 128


def test_unknown_model_is_refused_with_the_choices(registry, small_request):
    with pytest.raises(InvalidRequest) as caught:
        registry.generate(small_request.with_(model="nonexistent-model"))
    assert caught.value.field == "model" and "shapes" in str(caught.value)


def test_absent_hub_model_names_the_download_command(tmp_path, monkeypatch, small_request):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    registry = PipelineRegistry(models_dir=tmp_path / "models", outputs_dir=tmp_path / "out", device="cpu")
    assert registry.model_info("sd15").available is False
    with pytest.raises(ModelNotAvailable) as caught:
        registry.generate(small_request.with_(model="sd15", width=512, height=512))
    message = str(caught.value)
    assert caught.value.field == "model"
    assert "python -m studio download sd15" in message and "stable-diffusion-v1-5" in message
    assert pngs(tmp_path / "out") == []


def test_models_folder_entries_are_listed_and_usable(tmp_path, small_request):
    models = tmp_path / "models"
    mine = models / "my-shapes"
    shutil.copytree(SHAPES_DIR, mine, ignore=shutil.ignore_patterns("adapters"))
    (mine / "studio.json").write_text(json.dumps({"trigger_words": ["sks"]}))
    checkpoint = mine / "checkpoint-10"
    checkpoint.mkdir()
    shutil.copytree(SHAPES_DIR / "unet", checkpoint / "unet")
    (models / "style.safetensors").write_bytes(b"")
    (models / "style.studio.json").write_text(json.dumps({"type": "lora", "base": "shapes"}))
    registry = PipelineRegistry(models_dir=models, outputs_dir=tmp_path / "out", device="cpu", save_outputs=False)
    assert "my-shapes" in registry.model_names() and "my-shapes/checkpoint-10" in registry.model_names()
    assert registry.lora_names() == ["style"] and "style" not in registry.model_names()
    info = registry.model_info("my-shapes")
    assert info.family == "shapes" and info.trigger_words == ("sks",)
    assert registry.model_info("my-shapes/checkpoint-10").unet_path.endswith("checkpoint-10/unet")
    result = registry.generate(small_request.with_(model="my-shapes/checkpoint-10", steps=1))
    assert result.images[0].size == (64, 64)
    shutil.copytree(SHAPES_DIR, models / "later", ignore=shutil.ignore_patterns("adapters"))
    assert "later" not in registry.model_names()
    registry.refresh()
    assert "later" in registry.model_names()


def test_model_may_be_a_path(tmp_path, small_request):
    registry = PipelineRegistry(models_dir=None, outputs_dir=tmp_path / "out", device="cpu", save_outputs=False)
    result = registry.generate(small_request.with_(model=str(SHAPES_DIR), steps=1))
    assert result.images[0].size == (64, 64)
    assert registry.model_info(str(SHAPES_DIR)).family == "shapes"
    with pytest.raises(InvalidRequest):
        registry.model_info(str(tmp_path))  # a folder that holds no model


def test_lora_from_the_models_folder_by_key(tmp_path, small_request):
    from dreambooth_support import random_lora

    models = tmp_path / "models"
    models.mkdir()
    registry = PipelineRegistry(models_dir=models, outputs_dir=tmp_path / "out", device="cpu")
    base = registry.generate(small_request.with_(steps=2))
    random_lora(registry.load("shapes").components["unet"], models / "style", seed=3)
    registry.refresh()
    assert registry.lora_names() == ["style"]
    styled = registry.generate(small_request.with_(steps=2, loras=[("style", 1.0)]))
    assert not same(base.images[0], styled.images[0])
    assert 'Loras: "style:1"' in Image.open(styled.paths[0]).info["parameters"]
    with pytest.raises(InvalidRequest) as caught:
        registry.generate(small_request.with_(loras=[("missing", 1.0)]))
    assert caught.value.field == "loras" and "style" in str(caught.value)


def test_single_file_model_in_the_models_folder(tmp_path, registry, small_request):
    from pipelines.checkpoints.export import export_components

    models = tmp_path / "models"
    models.mkdir()
    export_components(dict(registry.load("shapes").components), models / "flat.safetensors", dtype="fp32",
                      family="shapes")
    local = PipelineRegistry(models_dir=models, outputs_dir=tmp_path / "out", device="cpu", save_outputs=False)
    info = local.model_info("flat")
    assert (info.format, info.family) == ("single_file", "shapes")
    request = small_request.with_(steps=2, seed=4)
    from_file = local.generate(request.with_(model="flat")).images[0]
    from_folder = registry.generate(request).images[0]
    assert np.abs(np.asarray(from_file, dtype=int) - np.asarray(from_folder, dtype=int)).max() <= 1


def test_sdxl_layout_model_generates(tmp_path, small_request):
    """The SDXL path (two text encoders, pooled embeddings) on a tiny random SDXL-shaped model."""
    from diffusers import AutoencoderKL
    from dreambooth_support import pipeline_from, tiny_components

    components = tiny_components("sdxl")
    components["vae"] = AutoencoderKL(block_out_channels=(8, 8, 8, 8), layers_per_block=1, norm_num_groups=8,
                                      down_block_types=("DownEncoderBlock2D",) * 4,
                                      up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4)
    pipeline_from(components).save_pretrained(str(tmp_path / "models" / "tiny-xl"))
    registry = PipelineRegistry(models_dir=tmp_path / "models", outputs_dir=tmp_path / "out", device="cpu")
    assert registry.model_info("tiny-xl").family == "sdxl"
    updates = []
    request = small_request.with_(model="tiny-xl", width=512, height=512, steps=2, scheduler="DPM++ 2M Karras")
    result = registry.generate(request, on_step=updates.append, preview_every=1)
    assert result.images[0].size == (512, 512) and [u.step for u in updates] == [1, 2]
    assert updates[-1].preview.size == (512, 512)
    again = registry.generate(request.with_(negative_prompt=""))
    assert again.images[0].size == (512, 512)


def test_builtin_weights_in_the_models_folder_load_offline(tmp_path, small_request):
    """models/sd15 holds sd15's weights (as `download` writes them: no safety checker, no feature extractor)."""
    target = tmp_path / "models" / "sd15"
    shutil.copytree(SHAPES_DIR, target, ignore=shutil.ignore_patterns("adapters"))
    index = json.loads((target / "model_index.json").read_text())
    index.update(feature_extractor=["transformers", "CLIPImageProcessor"],
                 safety_checker=["stable_diffusion", "StableDiffusionSafetyChecker"], requires_safety_checker=True)
    (target / "model_index.json").write_text(json.dumps(index))
    registry = PipelineRegistry(models_dir=tmp_path / "models", outputs_dir=tmp_path / "out", device="cpu",
                                save_outputs=False)
    info = registry.model_info("sd15")
    assert info.available and info.source == str(target) and info.family == "sd1"
    assert registry.model_names().count("sd15") == 1
    result = registry.generate(small_request.with_(model="sd15", width=256, height=256, steps=1))
    assert result.images[0].size == (256, 256)


def test_a_ckpt_is_refused_without_the_opt_in(tmp_path, small_request):
    import torch

    models = tmp_path / "models"
    models.mkdir()
    torch.save({"state_dict": {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(1)}}, models / "old.ckpt")
    registry = PipelineRegistry(models_dir=models, outputs_dir=tmp_path / "out", device="cpu")
    assert registry.model_info("old").format == "single_file"
    with pytest.raises(InvalidRequest) as caught:
        registry.generate(small_request.with_(model="old", width=256, height=256))
    assert caught.value.field == "model" and "old" in str(caught.value)


def test_lora_file_without_a_sidecar_is_listed_as_a_lora(tmp_path):
    """LoRAs downloaded from the web come as one .safetensors and no sidecar: the header tells them apart."""
    from dreambooth_support import kohya_from_diffusers, shapes_lora_file
    from safetensors.torch import load_file, save_file

    models = tmp_path / "models"
    shapes_lora_file(models / "ink.safetensors", seed=2)
    save_file(kohya_from_diffusers(load_file(str(models / "ink.safetensors"))), str(models / "ink_kohya.safetensors"))
    registry = PipelineRegistry(models_dir=models, outputs_dir=tmp_path / "out", device="cpu", save_outputs=False)
    assert registry.lora_names() == ["ink", "ink_kohya"]
    assert registry.lora_info("ink").path == str(models / "ink.safetensors")
    assert "ink" not in registry.model_names() and "ink_kohya" not in registry.model_names()
    with pytest.raises(InvalidRequest, match="not a model"):
        registry.model_info(str(models / "ink.safetensors"))


def test_a_ckpt_family_is_detected_at_scan_time_only_with_the_opt_in(tmp_path):
    """Without the opt-in the pickle is not opened, and the spec says its family is unknown; with it, the
    weights_only loader reads the keys, so limits and default size follow the real family."""
    import torch
    from dreambooth_support import load_shapes

    from pipelines.checkpoints.export import original_state_dict

    models = tmp_path / "models"
    models.mkdir()
    torch.save({"state_dict": original_state_dict(load_shapes())}, models / "tiny.ckpt")
    closed = PipelineRegistry(models_dir=models, outputs_dir=tmp_path / "out", device="cpu").model_info("tiny")
    assert closed.family == "sd1" and "family unknown" in closed.description
    opened = PipelineRegistry(models_dir=models, outputs_dir=tmp_path / "out", device="cpu", allow_ckpt=True)
    info = opened.model_info("tiny")
    assert info.family == "shapes" and "unknown" not in info.description
    assert opened.limits("tiny").default_width == 128
    assert opened.model_info(str(models / "tiny.ckpt")).family == "shapes"  # given as a path, too

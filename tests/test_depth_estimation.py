"""Depth estimation runs through transformers' depth-estimation pipeline from a local folder or the hub cache.

Tiny DPT and Depth Anything models are built from configs and saved like real ones, so the code path that
loads Intel/dpt-hybrid-midas or Depth Anything from disk is the one exercised here (offline, in seconds).
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from pipelines.adapters.depth import DepthEstimators, find_depth_model
from pipelines.adapters.preprocess import prepare_condition, preprocess_image
from pipelines.requests import AdapterInput, InvalidRequest


def _lift_head(model):
    """Random weights often leave the head's final ReLU at zero everywhere (a flat map); a positive bias on
    its last convolution keeps the output varying with the picture, as a trained model's does."""
    import torch

    last_conv = [m for m in model.head.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        last_conv.bias.fill_(1.0)
    return model.eval()


def _save_tiny_dpt(folder):
    import torch
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    torch.manual_seed(0)
    config = DPTConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=37,
                       image_size=64, patch_size=16, backbone_out_indices=[0, 1, 2, 3],
                       neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16, reassemble_factors=[4, 2, 1, 0.5])
    _lift_head(DPTForDepthEstimation(config)).save_pretrained(folder)
    DPTImageProcessor(size={"height": 64, "width": 64}, keep_aspect_ratio=False).save_pretrained(folder)
    return folder


def _save_tiny_depth_anything(folder):
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    torch.manual_seed(0)
    backbone = Dinov2Config(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=37,
                            image_size=56, patch_size=14, out_indices=[1, 2, 3, 4], reshape_hidden_states=False)
    config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=32, patch_size=14,
                                 neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16, head_hidden_size=8)
    _lift_head(DepthAnythingForDepthEstimation(config)).save_pretrained(folder)
    DPTImageProcessor(size={"height": 56, "width": 56}, keep_aspect_ratio=False,
                      ensure_multiple_of=14).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("depth")
    return {"dpt": _save_tiny_dpt(root / "dpt"), "depth_anything": _save_tiny_depth_anything(root / "da")}


@pytest.fixture
def photo():
    rng = np.random.default_rng(0)
    pixels = np.zeros((90, 120, 3), np.uint8)
    pixels[20:70, 30:90] = (220, 60, 40)
    return Image.fromarray(np.clip(pixels + rng.integers(0, 30, pixels.shape), 0, 255).astype(np.uint8))


@pytest.mark.parametrize("name", ["dpt", "depth_anything"])
def test_tiny_model_from_a_folder_gives_a_full_range_map_at_the_generation_size(tiny_models, photo, name):
    result = preprocess_image("depth", photo, 96, 64, options={"model": str(tiny_models[name])},
                              depth=DepthEstimators())
    assert result.image.size == (96, 64) and result.image.mode == "RGB"
    values = np.asarray(result.image)
    assert (values[..., 0] == values[..., 1]).all() and (values[..., 1] == values[..., 2]).all()
    assert values.min() == 0 and values.max() == 255  # relative depth stretched to the full range


def _as_hub_cache(cache_dir, repo_id, folder):
    """Lay `folder` out the way huggingface_hub caches a download of `repo_id`."""
    repo = cache_dir / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(folder, repo / "snapshots" / "0123abcd")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")


def test_a_known_model_in_the_hub_cache_is_found_and_used_by_prepare_condition(tiny_models, photo, tmp_path,
                                                                                 monkeypatch):
    monkeypatch.delenv("STUDIO_DEPTH_MODEL", raising=False)
    _as_hub_cache(tmp_path, "Intel/dpt-hybrid-midas", tiny_models["dpt"])
    estimators = DepthEstimators(cache_dir=tmp_path)
    found = find_depth_model(cache_dir=tmp_path)
    assert found is not None and found.parent.parent.name == "models--Intel--dpt-hybrid-midas"
    condition = prepare_condition(AdapterInput("depth", photo, preprocess=True), 128, 96, depth=estimators)
    assert condition.size == (128, 96) and np.asarray(condition).std() > 0
    assert estimators.estimator() is estimators.estimator()  # loaded once


def test_env_variable_and_models_folder_name_a_local_model(tiny_models, tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_DEPTH_MODEL", str(tiny_models["depth_anything"]))
    assert find_depth_model(cache_dir=tmp_path) == tiny_models["depth_anything"]
    monkeypatch.delenv("STUDIO_DEPTH_MODEL")
    shutil.copytree(tiny_models["dpt"], tmp_path / "models" / "depth-estimation")
    assert find_depth_model(models_dir=tmp_path / "models", cache_dir=tmp_path) == \
        tmp_path / "models" / "depth-estimation"


def test_without_a_model_the_user_is_told_to_supply_a_depth_map(photo, tmp_path, monkeypatch):
    monkeypatch.delenv("STUDIO_DEPTH_MODEL", raising=False)
    with pytest.raises(InvalidRequest) as caught:
        prepare_condition(AdapterInput("depth", photo, preprocess=True), 64, 64,
                          depth=DepthEstimators(models_dir=tmp_path, cache_dir=tmp_path))
    assert caught.value.field == "adapters"
    assert "depth map" in str(caught.value) and "download" in str(caught.value)


def test_a_named_model_that_is_not_on_disk_is_a_clear_error(photo, tmp_path):
    with pytest.raises(InvalidRequest, match="not on disk"):
        preprocess_image("depth", photo, 64, 64, options={"model": "Intel/dpt-large"},
                         depth=DepthEstimators(cache_dir=tmp_path))

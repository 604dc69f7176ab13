"""The adapter registry: stable keys per family, clear errors for a wrong family or a missing download."""
from __future__ import annotations

import pytest
import torch

from pipelines.adapters.catalog import (ADAPTERS, SHAPES_MODEL_DIR, AdapterSpec, adapter_spec, check_fits,
                                        is_available, kinds_for, load_adapter)
from pipelines.requests import InvalidRequest

SHAPES_UNET = SHAPES_MODEL_DIR / "unet"


def test_each_family_offers_its_adapters_under_stable_keys():
    assert set(ADAPTERS) == {"shapes", "sd1", "sdxl"}
    assert set(ADAPTERS["shapes"]) == {"sketch", "edge", "depth"}
    sd1 = {kind: spec.source for kind, spec in ADAPTERS["sd1"].items()}
    assert sd1["sketch"] == "TencentARC/t2iadapter_sketch_sd15v2"
    assert sd1["depth"] == "TencentARC/t2iadapter_depth_sd15v2"
    assert sd1["edge"] == "TencentARC/t2iadapter_canny_sd15v2"
    assert {"openpose", "color"} <= set(sd1)
    sdxl = {kind: spec.source for kind, spec in ADAPTERS["sdxl"].items()}
    assert sdxl == {"sketch": "TencentARC/t2i-adapter-sketch-sdxl-1.0",
                    "edge": "TencentARC/t2i-adapter-canny-sdxl-1.0",
                    "depth": "TencentARC/t2i-adapter-depth-midas-sdxl-1.0",
                    "lineart": "TencentARC/t2i-adapter-lineart-sdxl-1.0",
                    "openpose": "TencentARC/t2i-adapter-openpose-sdxl-1.0"}
    for family, table in ADAPTERS.items():
        for kind, spec in table.items():
            assert (spec.family, spec.kind) == (family, kind)


def test_the_bundled_adapters_are_present_and_fit_the_bundled_unet():
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(SHAPES_UNET)
    for kind in ("sketch", "edge", "depth"):
        spec = adapter_spec("shapes", kind)
        assert spec.is_local and is_available(spec)
        adapter = load_adapter(spec, dtype=torch.float32)
        check_fits(adapter, unet, vae_scale_factor=8, spec=spec)
        assert adapter.dtype == torch.float32 and not adapter.training


def test_an_adapter_of_another_family_is_a_clear_error():
    with pytest.raises(InvalidRequest) as caught:
        adapter_spec("sd1", "lineart")
    message = str(caught.value)
    assert caught.value.field == "adapters"
    assert "'lineart' exists for sdxl" in message and "'sketch'" in message  # names what the family offers
    with pytest.raises(InvalidRequest, match="shapes"):
        adapter_spec("shapes", "openpose")
    with pytest.raises(InvalidRequest, match="have no T2I-Adapters"):
        adapter_spec("sd2", "sketch")
    assert kinds_for("sd2") == [] and kinds_for("shapes") == ["sketch", "edge", "depth"]


def test_adapter_weights_shaped_for_another_unet_are_refused():
    from diffusers import T2IAdapter, UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(SHAPES_UNET)
    sd_shaped = T2IAdapter(in_channels=3, channels=[320, 640, 1280, 1280], num_res_blocks=1, downscale_factor=8)
    with pytest.raises(InvalidRequest, match="another model family"):
        check_fits(sd_shaped, unet, vae_scale_factor=8)


def test_a_missing_download_names_the_download_command(tmp_path):
    spec = adapter_spec("sdxl", "edge")
    assert not is_available(spec, cache_dir=tmp_path)
    with pytest.raises(InvalidRequest) as caught:
        load_adapter(spec, cache_dir=tmp_path)
    assert "not downloaded" in str(caught.value) and "python -m studio download" in str(caught.value)
    local = AdapterSpec("sketch", "shapes", str(tmp_path / "nowhere"))
    with pytest.raises(InvalidRequest, match="not downloaded"):
        load_adapter(local)


def test_a_downloaded_hub_adapter_loads_from_the_cache_offline(tmp_path):
    from diffusers import T2IAdapter

    spec = adapter_spec("sd1", "edge")
    snapshot = tmp_path / "models--TencentARC--t2iadapter_canny_sd15v2" / "snapshots" / "feedc0de"
    tiny = T2IAdapter(in_channels=1, channels=[8, 16], num_res_blocks=1, downscale_factor=8)
    tiny.save_pretrained(snapshot)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("feedc0de")
    assert is_available(spec, cache_dir=tmp_path)
    loaded = load_adapter(spec, cache_dir=tmp_path)
    assert loaded.config.in_channels == 1 and list(loaded.config.channels) == [8, 16]
    assert torch.equal(loaded.state_dict()["adapter.conv_in.weight"], tiny.state_dict()["adapter.conv_in.weight"])

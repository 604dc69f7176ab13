"""Generation with T2I-Adapters on the bundled model: the mechanics (not the image quality).

Condition maps are saved beside each output and named in its PNG metadata; two adapters combine with their
weights; the base UNet, VAE and text encoder exist once whatever the mode; wrong kinds and unreadable
pictures are clear errors; progress and Stop work as in text-to-image.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines import GenerationRequest
from pipelines.requests import AdapterInput, GenerationCancelled, InvalidRequest
from pipelines.shapes.render import condition_map, render, shape_geometry
from pipelines.shapes.world import Scene

SCENE = Scene("circle", "red", "white", "large", "top left")


def _map(kind: str, size: int = 64) -> Image.Image:
    geometry = shape_geometry(SCENE)
    return condition_map(kind, SCENE, geometry).resize((size, size), Image.LANCZOS)


def _request(*adapters: AdapterInput, **changes) -> GenerationRequest:
    base = GenerationRequest(prompt="a large red circle on a white background", model="shapes",
                             scheduler="Euler a", steps=3, guidance_scale=7.0, width=64, height=64, seed=5,
                             adapters=adapters)
    return base.with_(**changes)


def test_condition_maps_are_saved_beside_each_image_and_named_in_its_metadata(fresh_registry):
    sketch = _map("sketch")
    result = fresh_registry.generate(_request(AdapterInput("sketch", sketch, weight=0.8), num_images=2))
    assert len(result.paths) == 2
    for item in result.items:
        path = Path(item.path)
        saved_map = path.with_name(f"{path.stem}.cond0.png")
        assert saved_map.is_file()
        assert np.array_equal(np.asarray(Image.open(saved_map).convert("RGB")), np.asarray(item.condition_maps[0]))
        assert np.array_equal(np.asarray(item.condition_maps[0]), np.asarray(sketch))
        info = Image.open(path).info
        assert f"Adapter 0 map: {saved_map.name}" in info["parameters"]
        assert "kind: sketch, weight: 0.8" in info["parameters"]
        saved = json.loads(info["studio_request"])
        assert saved["adapters"] == [{"kind": "sketch", "weight": 0.8, "preprocess": False, "options": {}}]


def test_a_photo_is_preprocessed_into_the_map_that_is_fed_and_saved(fresh_registry):
    photo = render(SCENE, geometry=shape_geometry(SCENE)).resize((200, 200), Image.LANCZOS)
    options = {"low": 50, "high": 150}
    result = fresh_registry.generate(_request(AdapterInput("edge", photo, preprocess=True, options=options)))
    from pipelines.adapters import preprocess_image

    expected = preprocess_image("edge", photo, 64, 64, "canny", options).image
    assert np.array_equal(np.asarray(result.items[0].condition_maps[0]), np.asarray(expected))
    assert np.asarray(expected).max() == 255  # the circle's edges were found


def test_two_adapters_combine_with_their_weights(fresh_registry):
    sketch, depth = _map("sketch"), _map("depth")
    alone = fresh_registry.generate(_request(AdapterInput("sketch", sketch))).images[0]
    muted = fresh_registry.generate(_request(AdapterInput("sketch", sketch), AdapterInput("depth", depth, weight=0.0)))
    mixed = fresh_registry.generate(_request(AdapterInput("sketch", sketch), AdapterInput("depth", depth, weight=0.7)))
    assert len(mixed.items[0].condition_maps) == 2
    # Weight 0 silences the second adapter exactly; a real weight changes the picture.
    assert np.array_equal(np.asarray(muted.images[0]), np.asarray(alone))
    assert not np.array_equal(np.asarray(mixed.images[0]), np.asarray(alone))
    assert "Adapter 1: \"kind: depth, weight: 0.7" in Image.open(mixed.paths[0]).info["parameters"]


def test_one_copy_of_the_base_weights_whatever_the_mode(fresh_registry, monkeypatch):
    import pipelines.adapters as adapters

    loads = []
    real_load = adapters.load_adapter
    monkeypatch.setattr(adapters, "load_adapter", lambda spec, **kw: loads.append(spec.key) or real_load(spec, **kw))
    fresh_registry.generate(_request())
    loaded = fresh_registry.load("shapes")
    ids = {name: id(loaded.components[name]) for name in ("unet", "vae", "text_encoder")}
    unet_calls = []
    hook = loaded.components["unet"].register_forward_hook(lambda *args: unet_calls.append(1))
    try:
        for kind in ("sketch", "edge", "depth", "sketch"):
            fresh_registry.generate(_request(AdapterInput(kind, _map(kind))))
    finally:
        hook.remove()
    fresh_registry.generate(_request())
    after = fresh_registry.load("shapes")
    assert after is loaded and {name: id(after.components[name]) for name in ids} == ids
    assert unet_calls  # the adapter runs went through the one shared UNet
    assert list(fresh_registry.load_counts.values()) == [1]
    assert sorted(loads) == ["shapes/depth", "shapes/edge", "shapes/sketch"]  # each adapter loaded once


def test_an_adapter_the_family_does_not_offer_is_a_clear_error(fresh_registry):
    with pytest.raises(InvalidRequest) as caught:
        fresh_registry.generate(_request(AdapterInput("openpose", _map("sketch"))))
    assert caught.value.field == "adapters"
    assert "'openpose'" in str(caught.value) and "sketch" in str(caught.value)


def test_an_unreadable_condition_image_is_a_clear_error(fresh_registry, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    with pytest.raises(InvalidRequest, match="cannot read") as caught:
        fresh_registry.generate(_request(AdapterInput("sketch", str(broken))))
    assert caught.value.field == "adapters"
    assert not list((tmp_path / "outputs").rglob("*.png"))


def test_progress_previews_and_stop_work_with_adapters(fresh_registry, tmp_path):
    updates = []
    request = _request(AdapterInput("depth", _map("depth")), steps=4, num_images=2)
    fresh_registry.generate(request, on_step=updates.append, preview_every=2)
    assert [u.step for u in updates] == list(range(1, 9)) and {u.total for u in updates} == {8}
    assert sum(u.preview is not None for u in updates) == 4
    seen = []
    with pytest.raises(GenerationCancelled):
        fresh_registry.generate(request, on_step=seen.append, should_stop=lambda: len(seen) >= 2)
    assert len(seen) == 2
    saved_before = sorted((tmp_path / "outputs").rglob("*.png"))
    assert len(saved_before) == 4  # the finished run's 2 images and 2 maps; nothing from the stopped one

"""The Adapters tab's endpoints through gradio_client, and the slot values -> AdapterInput conversion."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from pipelines.requests import InvalidRequest
from pipelines.shapes.render import render, shape_geometry, sketch_map
from pipelines.shapes.world import Scene
from studio.adapter_form import api_input, drawing_image, slot_input

SCENE = Scene("square", "blue", "white", "large", "center")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from gradio_client import Client

    from pipelines import PipelineRegistry
    from studio.ui import build_demo

    root = tmp_path_factory.mktemp("adapter_api")
    registry = PipelineRegistry(models_dir=root / "models", outputs_dir=root / "outputs", device="cpu",
                                dtype="float32", save_outputs=True)
    demo = build_demo(registry)
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True)
    try:
        yield Client(url, verbose=False)
    finally:
        demo.close()


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pictures")
    geometry = shape_geometry(SCENE)
    render(SCENE, geometry=geometry).resize((300, 300)).save(folder / "photo.png")
    sketch_map(SCENE, geometry).save(folder / "sketch.png")
    (folder / "broken.png").write_bytes(b"not a picture")
    return folder


def test_preprocess_endpoint_returns_the_map_at_the_asked_size(client, pictures):
    from gradio_client import handle_file

    path, note = client.predict(kind="edge", image=handle_file(str(pictures / "photo.png")), width=96, height=64,
                                preprocessor="canny", options=json.dumps({"low": 50, "high": 150}),
                                api_name="/preprocess")
    edges = np.asarray(Image.open(path).convert("L"))
    assert edges.shape == (64, 96) and note == ""
    assert 0 < (edges > 128).mean() < 0.2  # the square's outline, not the whole picture


def test_preprocess_endpoint_reports_bad_settings_by_name(client, pictures):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="'low' must be from 0 to 255"):
        client.predict(kind="edge", image=handle_file(str(pictures / "photo.png")), width=64, height=64,
                       preprocessor="canny", options='{"low": 999}', api_name="/preprocess")


def test_adapter_endpoint_generates_with_two_weighted_conditions(client, pictures):
    from gradio_client import handle_file

    images, maps, info = client.predict(
        prompt="a large blue square on a white background", steps=3, seed=7, width=64, height=64,
        kind="sketch", image=handle_file(str(pictures / "sketch.png")), weight=0.9,
        kind_2="edge", image_2=handle_file(str(pictures / "photo.png")), weight_2=0.4, preprocess_2=True,
        api_name="/adapter")
    assert len(images) == 1 and len(maps) == 2
    assert Image.open(images[0]["image"]).size == (64, 64)
    assert info["seeds"] == [7]
    assert [(a["kind"], a["weight"]) for a in info["request"]["adapters"]] == [("sketch", 0.9), ("edge", 0.4)]
    saved = Image.open(info["paths"][0]).info["parameters"]
    assert "Adapter 0 map:" in saved and "Adapter 1 map:" in saved


def test_adapter_endpoint_errors_name_the_problem(client, pictures):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="'openpose' is not offered for 'shapes'"):
        client.predict(prompt="a square", steps=2, kind="openpose", image=handle_file(str(pictures / "sketch.png")),
                       api_name="/adapter")
    with pytest.raises(AppError, match="at least one condition"):
        client.predict(prompt="a square", steps=2, kind="sketch", api_name="/adapter")


def test_an_empty_sketchpad_is_no_condition_and_a_drawing_is_one():
    canvas = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    assert drawing_image({"background": None, "layers": [], "composite": canvas}) is None
    assert drawing_image({"composite": Image.new("RGB", (200, 200), "white")}) is None
    ImageDraw.Draw(canvas).line([(20, 20), (180, 180)], fill=(0, 0, 0, 255), width=8)
    slot = {"kind": "sketch", "source": "Draw", "drawing": {"composite": canvas}, "upload": None,
            "preprocessor": "as-is", "weight": 0.6, "low": 100, "high": 200, "polarity": "auto"}
    condition = slot_input(slot)
    assert condition.kind == "sketch" and condition.weight == 0.6 and not condition.preprocess
    assert dict(condition.options) == {"preprocessor": "as-is", "polarity": "auto"}  # canny settings left out
    assert slot_input(dict(slot, source="Upload")) is None  # nothing uploaded


def test_slot_values_pass_only_the_chosen_preprocessors_settings():
    photo = Image.new("RGB", (64, 64), "gray")
    slot = {"kind": "edge", "source": "Upload", "drawing": None, "upload": photo, "preprocessor": "canny",
            "weight": 1.0, "low": 30, "high": 90, "threshold": 0.5, "thickness": 2, "polarity": "auto"}
    condition = slot_input(slot)
    assert condition.preprocess and dict(condition.options) == {"preprocessor": "canny", "low": 30, "high": 90}
    with pytest.raises(InvalidRequest, match="weight"):
        slot_input(dict(slot, weight="heavy"))
    with pytest.raises(InvalidRequest, match="options must be a JSON object"):
        api_input("edge", photo, options="low=3")

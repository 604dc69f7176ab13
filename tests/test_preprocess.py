"""Preprocessors find edges and lines where a rendered scene has them, and every input form is handled alike."""
from __future__ import annotations

import io
import random

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from pipelines.adapters.preprocess import PREPROCESSORS, prepare_condition, preprocess_image, preprocessors_for
from pipelines.requests import AdapterInput, InvalidRequest
from pipelines.shapes.render import render, shape_geometry, shape_mask
from pipelines.shapes.world import Scene


def _scene(shape="square", position="center", size="large"):
    scene = Scene(shape, "red", "blue", size, position)
    geometry = shape_geometry(scene)
    return render(scene, geometry=geometry), shape_mask(scene, geometry)


def _perimeter(mask: np.ndarray) -> int:
    """Pixels of the shape that touch the background."""
    import cv2

    return int((mask & ~cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)).sum())


def _boundary(mask: np.ndarray, width: int) -> np.ndarray:
    """A band `width` pixels either side of the shape's outline."""
    import cv2

    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    m = mask.astype(np.uint8)
    return (cv2.dilate(m, kernel) - cv2.erode(m, kernel)).astype(bool)


@pytest.mark.parametrize("preprocessor", ["canny", "sketch"])
@pytest.mark.parametrize("shape,position", [("square", "center"), ("circle", "top left"),
                                            ("triangle", "bottom"), ("star", "right")])
def test_lines_follow_the_outline_of_a_rendered_shape(preprocessor, shape, position):
    image, mask = _scene(shape, position)
    kind = "edge" if preprocessor == "canny" else "sketch"
    result = preprocess_image(kind, image, 128, 128, preprocessor=preprocessor)
    lines = np.asarray(result.image.convert("L")) > 64
    near_outline = _boundary(mask, 2)
    assert lines.sum() > 0.7 * _perimeter(mask)
    assert (lines & near_outline).sum() / lines.sum() > 0.97  # nothing away from the outline
    outline = _boundary(mask, 1)
    assert (lines & outline).sum() / outline.sum() > 0.3  # and the outline is found all round


def test_canny_thresholds_change_what_counts_as_an_edge():
    image, _ = _scene()
    noisy = np.asarray(image.filter(ImageFilter.GaussianBlur(2))).astype(np.int16)
    noisy += np.random.default_rng(1).integers(-25, 25, noisy.shape).astype(np.int16)
    photo = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    counts = [(np.asarray(preprocess_image("edge", photo, 128, 128, "canny", {"low": low, "high": high})
                          .image) > 0).sum() for low, high in ((20, 40), (100, 200), (220, 255))]
    assert counts[0] > counts[1] > counts[2]


def test_sketchpad_drawing_becomes_white_strokes_on_black():
    drawing = Image.new("RGBA", (300, 200), (0, 0, 0, 0))  # a transparent sketchpad layer
    ImageDraw.Draw(drawing).line([(50, 100), (250, 100)], fill=(10, 10, 10, 255), width=9)
    condition = prepare_condition(AdapterInput("sketch", drawing), 150, 100)
    gray = np.asarray(condition.convert("L"))
    assert condition.size == (150, 100)
    assert gray[50, 75] > 200 and gray[10, 75] < 30 and np.median(gray) < 30


def test_a_map_already_white_on_black_is_kept_as_it_is():
    scene = Scene("star", "red", "blue", "large", "center")
    from pipelines.shapes.render import sketch_map

    sketch = sketch_map(scene, shape_geometry(scene))
    condition = prepare_condition(AdapterInput("sketch", sketch), 128, 128)
    assert np.array_equal(np.asarray(condition), np.asarray(sketch))
    inverted = prepare_condition(AdapterInput("sketch", sketch, options={"polarity": "invert"}), 128, 128)
    assert np.array_equal(np.asarray(inverted), 255 - np.asarray(sketch))


def _encoded(image: Image.Image, **save) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **save)
    return buffer.getvalue()


def test_rgba_palette_and_16_bit_files_give_the_same_map():
    image, mask = _scene("circle", "center")
    depth8 = Image.fromarray(np.where(mask, 230, 20).astype(np.uint8))
    depth16 = Image.fromarray((np.asarray(depth8).astype(np.uint16) * 257)).convert("I;16")
    forms = {
        "rgb": _encoded(depth8.convert("RGB")),
        "rgba": _encoded(depth8.convert("RGBA")),
        "palette": _encoded(depth8.convert("RGB").convert("P", palette=Image.ADAPTIVE, colors=8)),
        "16-bit": _encoded(depth16),
        "gray+alpha": _encoded(depth8.convert("LA")),
    }
    maps = {name: np.asarray(prepare_condition(AdapterInput("depth", data), 128, 128)) for name, data in forms.items()}
    for name, values in maps.items():
        assert values.shape == (128, 128, 3), name
        assert np.abs(values.astype(int) - maps["rgb"]).max() <= 2, name
    assert maps["rgb"][mask].mean() > 200 and maps["rgb"][~mask].mean() < 40  # bright = near kept


def test_odd_sizes_and_large_photos_are_scaled_to_cover_and_centre_cropped():
    big = Image.new("RGB", (4000, 3000), "white")
    ImageDraw.Draw(big).ellipse([1700, 1200, 2300, 1800], fill="black")  # a dark disc in the middle
    first = prepare_condition(AdapterInput("sketch", big), 96, 160)
    again = prepare_condition(AdapterInput("sketch", big.copy()), 96, 160)
    assert first.size == (96, 160) and np.array_equal(np.asarray(first), np.asarray(again))
    gray = np.asarray(first.convert("L"))
    ys, xs = np.nonzero(gray > 128)
    assert abs(xs.mean() - 48) < 2 and abs(ys.mean() - 80) < 2  # the disc stays centred, undistorted
    assert abs((xs.max() - xs.min()) - (ys.max() - ys.min())) <= 2
    odd = preprocess_image("edge", Image.new("RGB", (37, 113), "gray"), 72, 40)
    assert odd.image.size == (72, 40)


@pytest.mark.parametrize("bad", [b"not an image at all", "/no/such/file.png", 42])
def test_unreadable_images_are_a_clear_error(bad):
    with pytest.raises(InvalidRequest) as caught:
        prepare_condition(AdapterInput("edge", bad, preprocess=True), 64, 64)
    assert caught.value.field == "adapters"


def test_truncated_png_is_a_clear_error():
    data = _encoded(Image.effect_noise((64, 64), 40))[:200]
    with pytest.raises(InvalidRequest, match="cannot read"):
        prepare_condition(AdapterInput("depth", data), 64, 64)


@pytest.mark.parametrize("options,message", [({"low": 300}, "'low' must be from 0 to 255"),
                                             ({"low": 150, "high": 100}, "must not exceed"),
                                             ({"sigma": 2}, "has no option 'sigma'")])
def test_bad_preprocessor_settings_name_the_setting_and_range(options, message):
    image, _ = _scene()
    with pytest.raises(InvalidRequest, match=message):
        prepare_condition(AdapterInput("edge", image, preprocess=True, options=options), 64, 64)


def test_unknown_kind_and_weight_out_of_range_are_errors():
    image, _ = _scene()
    with pytest.raises(InvalidRequest, match="kind must be one of"):
        prepare_condition(AdapterInput("scribble", image), 64, 64)
    with pytest.raises(InvalidRequest, match="weight must be from 0.0 to 4.0"):
        prepare_condition(AdapterInput("edge", image, weight=4.5), 64, 64)


def test_learned_sketch_falls_back_to_the_built_in_extractor_and_says_so():
    image, _ = _scene("triangle")
    result = preprocess_image("sketch", image, 128, 128)  # the sketch default: PidiNet where it can run
    builtin = preprocess_image("sketch", image, 128, 128, preprocessor="sketch")
    try:
        import controlnet_aux  # noqa: F401
        has_extra = True
    except Exception:  # noqa: BLE001 - fails with RuntimeError when torchvision is missing
        has_extra = False
    assert result.preprocessor == "pidinet"
    if not has_extra:
        assert "built-in" in result.note
        assert np.array_equal(np.asarray(result.image), np.asarray(builtin.image))
    assert result.image.size == (128, 128)


def test_every_kind_offers_as_is_and_its_default_extractor():
    assert preprocessors_for("edge")[:2] == ["as-is", "canny"]
    assert preprocessors_for("depth") == ["as-is", "depth"]
    assert preprocessors_for("segmentation") == ["as-is"]
    for names in (preprocessors_for(k) for k in ("sketch", "lineart", "color", "openpose")):
        assert all(name in PREPROCESSORS for name in names)


def test_color_grid_averages_cells():
    rng = random.Random(0)
    pixels = np.array([[rng.choice([(255, 0, 0), (0, 0, 255)]) for _ in range(128)] for _ in range(128)], np.uint8)
    grid = np.asarray(preprocess_image("color", Image.fromarray(pixels), 128, 128, options={"cell": 64}).image)
    assert len(np.unique(grid[:64, :64].reshape(-1, 3), axis=0)) == 1  # one colour per cell


def test_pose_extraction_without_its_optional_extra_says_to_upload_a_pose_map():
    # Here controlnet-aux cannot be imported (it needs torchvision); where it can, its weights are not cached.
    image, _ = _scene()
    with pytest.raises(InvalidRequest, match="upload a pose map"):
        prepare_condition(AdapterInput("openpose", image, preprocess=True), 64, 64)
    as_is = prepare_condition(AdapterInput("openpose", image), 64, 64)  # a pose map is taken as it is
    assert as_is.size == (64, 64) and as_is.mode == "RGB"


def _annotators_cache(root, files) -> None:
    """A Hugging Face cache holding `files` of lllyasviel/Annotators, laid out as the hub client writes it."""
    repo = root / "models--lllyasviel--Annotators"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for name in files:
        (snapshot / name).write_bytes(b"weights")


def test_pose_extraction_asks_for_every_openpose_weight_file(tmp_path, monkeypatch):
    """controlnet-aux opens the body, hand and face models: the body model alone is not enough."""
    import huggingface_hub.constants

    from pipelines.adapters import sketch

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    _annotators_cache(tmp_path, ["body_pose_model.pth"])
    assert sketch.annotator_folder("openpose") is None
    image, _ = _scene()
    with pytest.raises(InvalidRequest, match="hand_pose_model.pth facenet.pth") as caught:
        prepare_condition(AdapterInput("openpose", image, preprocess=True), 64, 64)
    assert "upload a pose map" in str(caught.value)
    for name in ("hand_pose_model.pth", "facenet.pth"):
        (tmp_path / "models--lllyasviel--Annotators" / "snapshots" / ("0" * 40) / name).write_bytes(b"weights")
    assert sketch.annotator_folder("openpose") == str(tmp_path / "models--lllyasviel--Annotators" / "snapshots"
                                                      / ("0" * 40))

"""The picture work of image to image and inpainting (pipelines/modes/images.py, prepare.py): resize modes, the
mask's blur and region, fill, putting the original back, outpainting's canvas. No model: fast."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from pipelines.families import FAMILIES
from pipelines.modes.images import (binary_mask, blur_mask, fill_masked, fitted_size, grow_to_aspect, mask_region,
                                    outpaint_canvas, overlay, resize_image)
from pipelines.modes.prepare import latent_mask, prepare_picture
from pipelines.requests import GenerationRequest


def striped(width: int, height: int) -> Image.Image:
    """Columns coloured by x and rows by y, so any crop or stretch shows."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], axis=2).astype(np.uint8), "RGB")


def test_resize_modes_frame_the_picture_as_a1111_does():
    wide = striped(200, 100)
    assert resize_image(wide, 128, 128, "Just resize").size == (128, 128)
    cropped = np.asarray(resize_image(wide, 128, 128, "Crop and resize"), dtype=np.float32)
    # scaled to cover (256x128), a quarter cut off each side: the red ramp spans the middle half of the stripes
    assert cropped[:, 0, 0].mean() == pytest.approx(255 * 0.25, abs=6)
    assert cropped[:, -1, 0].mean() == pytest.approx(255 * 0.75, abs=6)
    filled = np.asarray(resize_image(wide, 128, 128, "Resize and fill"), dtype=np.int32)
    # scaled to fit (128x64) in the middle; the bands above and below repeat the picture's first / last row
    assert np.abs(filled[:32] - filled[32]).max() <= 3 and np.abs(filled[96:] - filled[95]).max() <= 3
    assert filled[32:96, :, 1].min() < 20 and filled[32:96, :, 1].max() > 235  # the whole picture is there
    with pytest.raises(ValueError, match="resize mode"):
        resize_image(wide, 64, 64, "Stretch")


def test_mask_from_a_brush_layer_or_a_grey_picture():
    layer = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    ImageDraw.Draw(layer).rectangle((8, 8, 15, 15), fill=(255, 255, 255, 200))
    assert binary_mask(layer).getbbox() == (8, 8, 16, 16) and set(np.unique(binary_mask(layer))) == {0, 255}
    grey = Image.new("L", (32, 32), 0)
    grey.paste(255, (4, 4, 10, 10))
    assert binary_mask(grey.convert("RGB")).getbbox() == (4, 4, 10, 10)


def test_blur_reaches_two_and_a_half_sigma_and_no_further():
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    blurred = np.asarray(blur_mask(mask, 4))
    reach = 2 * int(2.5 * 4 + 0.5) // 2  # the kernel's half width (A1111's kernel size formula)
    assert blurred[32, 16 - reach] > 0 and blurred[32, 16 - reach - 1] == 0
    assert blurred[32, 32] == 255 and 100 < blurred[32, 16] < 160  # the edge is about half way
    assert blur_mask(mask, 0) is mask


def test_only_masked_region_is_padded_and_grown_to_the_aspect_ratio():
    mask = Image.new("L", (200, 100), 0)
    mask.paste(255, (90, 40, 110, 50))
    region = mask_region(mask, 8)
    assert region == (82, 32, 118, 58)
    x1, y1, x2, y2 = grow_to_aspect(region, 128, 64, 200, 100)  # 2:1
    assert (x2 - x1) == 2 * (y2 - y1) and x1 <= 82 and x2 >= 118 and y1 <= 32 and y2 >= 58
    # at the picture's edge the region shifts inward instead of leaving it
    corner = grow_to_aspect((0, 0, 10, 40), 64, 64, 200, 100)
    assert corner[0] == 0 and corner[2] - corner[0] == corner[3] - corner[1] == 40
    assert mask_region(Image.new("L", (8, 8)), 4) is None


def test_fill_paints_the_mask_with_the_colours_around_it():
    picture = Image.new("RGB", (64, 64), (200, 30, 30))
    picture.paste((30, 30, 200), (0, 32, 64, 64))  # red above, blue below
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    out = np.asarray(fill_masked(picture, mask), dtype=np.int32)
    kept = np.asarray(mask) == 0
    assert np.array_equal(out[kept], np.asarray(picture, dtype=np.int32)[kept])
    assert out[18, 32, 0] > out[18, 32, 2] and out[45, 32, 2] > out[45, 32, 0]  # each side takes its neighbour


def test_overlay_keeps_the_original_where_the_mask_is_zero():
    original, result = striped(64, 64), Image.new("RGB", (64, 64), (0, 255, 0))
    repaint = blur_mask(Image.new("L", (64, 64), 0), 0)
    repaint.paste(255, (20, 20, 40, 40))
    repaint = blur_mask(repaint, 3)
    out = np.asarray(overlay(result, original, repaint))
    zero = np.asarray(repaint) == 0
    assert np.array_equal(out[zero], np.asarray(original)[zero])
    assert tuple(out[30, 30]) == (0, 255, 0)
    pasted = np.asarray(overlay(Image.new("RGB", (32, 32), (0, 255, 0)), original, repaint, paste_box=(16, 16, 48, 48)))
    assert np.array_equal(pasted[zero], np.asarray(original)[zero]) and tuple(pasted[30, 30]) == (0, 255, 0)


def test_outpaint_canvas_keeps_the_picture_and_masks_only_the_new_area():
    picture = striped(64, 48)
    canvas, mask = outpaint_canvas(picture, 16, ("left", "down"))
    assert canvas.size == mask.size == (80, 64)
    assert np.array_equal(np.asarray(canvas)[0:48, 16:80], np.asarray(picture))
    assert mask.getbbox() == (0, 0, 80, 64) and np.asarray(mask)[0:48, 16:80].max() == 0
    assert np.asarray(mask)[:, :16].min() == 255 and np.asarray(mask)[48:].min() == 255
    assert np.abs(np.asarray(canvas, dtype=np.int32)[10, :16] - np.asarray(picture, dtype=np.int32)[10, 0]).max() <= 2


def test_outpainting_blurs_the_mask_only_into_the_new_area():
    request = GenerationRequest(prompt="", width=64, height=64, init_image=striped(64, 64), outpaint_pixels=16,
                                outpaint_directions=("right",), mask_blur=4, masked_content="original")
    prepared = prepare_picture(request)
    assert prepared.size == (80, 64) and np.asarray(prepared.mask)[:, :64].max() == 0
    assert np.asarray(prepared.mask)[:, 75:].min() == 255 and 0 < np.asarray(prepared.mask)[5, 64] < 255
    finished = np.asarray(prepared.finish(Image.new("RGB", (80, 64), (0, 255, 0))))
    assert np.array_equal(finished[:, :64], np.asarray(request.init_image))


def test_latent_mask_is_a1111s_rounded_latmask():
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 40, 40))
    latent = latent_mask(mask, (8, 8))
    assert latent.shape == (8, 8) and set(np.unique(latent)) == {0.0, 1.0}
    assert latent[2:5, 2:5].min() == 1 and latent[0].max() == 0


def test_a_picture_is_fitted_to_each_familys_sizes():
    for family in FAMILIES.values():
        limits = family.limits
        for size in ((40, 30), (3000, 1000), (512, 768)):
            width, height = fitted_size(limits, Image.new("RGB", size))
            assert limits.min_size <= width <= limits.max_size and limits.min_size <= height <= limits.max_size
            assert width % limits.size_multiple == 0 and height % limits.size_multiple == 0
    assert fitted_size(FAMILIES["shapes"].limits, Image.new("RGB", (200, 100))) == (200, 96)
    assert fitted_size(FAMILIES["sd1"].limits, Image.new("RGB", (2048, 1024))) == (1024, 512)


def test_the_brush_layer_of_the_editor_is_the_mask():
    from studio.mode_widgets import editor_picture_and_mask

    background = striped(64, 48).convert("RGBA")
    layer = Image.new("RGBA", (64, 48), (0, 0, 0, 0))
    ImageDraw.Draw(layer).ellipse((10, 10, 30, 30), fill=(255, 255, 255, 190))  # a half-transparent white brush
    picture, mask = editor_picture_and_mask({"background": background, "layers": [layer], "composite": None})
    assert picture.mode == "RGB" and np.array_equal(np.asarray(picture), np.asarray(background.convert("RGB")))
    assert mask.getbbox() == layer.getbbox() and set(np.unique(mask)) == {0, 255}
    assert editor_picture_and_mask({"background": background, "layers": [], "composite": None})[1] is None
    assert editor_picture_and_mask(None) == (None, None)

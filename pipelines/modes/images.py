"""Picture work around image to image and inpainting (PIL and numpy only; no model).

The steps are AUTOMATIC1111's: the init picture is brought to the generation size by a resize mode; a mask
(white = repaint) is made binary, blurred by `mask_blur` pixels, and either used on the whole picture or,
for "Only masked", on the region around it (padded, grown to the generation's aspect ratio, cropped and
scaled); masked content "fill" paints the masked area with colours from around it; at the end the original
pixels are laid back over the result outside the blurred mask, so they are kept exactly.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

RESIZE_MODES = ("Just resize", "Crop and resize", "Resize and fill")
OUTPAINT_DIRECTIONS = ("left", "right", "up", "down")


def fitted_size(limits, picture: Image.Image) -> tuple[int, int]:
    """A picture's size brought within a model's limits (pipelines.families.Limits): scaled down to fit the
    largest side, up to reach the smallest, each side a multiple of the size step (aspect kept as well as
    that allows). The default width and height of image to image."""
    scale = min(1.0, limits.max_size / max(picture.size))
    scale = max(scale, limits.min_size / min(picture.size))
    step = limits.size_multiple

    def side(value: float) -> int:
        return int(min(limits.max_size, max(limits.min_size, round(value * scale / step) * step)))

    return side(picture.width), side(picture.height)


def flatten(image: Image.Image, background=(255, 255, 255)) -> Image.Image:
    """RGB; a transparent picture is laid on white first (A1111's default img2img background)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        base = Image.new("RGBA", rgba.size, background + (255,))
        return Image.alpha_composite(base, rgba).convert("RGB")
    return image.convert("RGB")


def _scaled(image: Image.Image, width: int, height: int) -> Image.Image:
    size = (max(1, width), max(1, height))
    return image if image.size == size else image.resize(size, Image.LANCZOS)


def resize_image(image: Image.Image, width: int, height: int, mode: str = "Just resize") -> Image.Image:
    """`image` as exactly width x height. Just resize: stretched. Crop and resize: scaled to cover, the
    overhang cut evenly off both sides. Resize and fill: scaled to fit, the empty bands filled by stretching
    the picture's outermost rows (or columns) outward."""
    if mode == "Just resize":
        return _scaled(image, width, height)
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")
    covers = mode == "Crop and resize"
    scale = (max if covers else min)(width / image.width, height / image.height)
    inner_w, inner_h = round(image.width * scale), round(image.height * scale)
    inner = _scaled(image, inner_w, inner_h)
    left, top = (width - inner_w) // 2, (height - inner_h) // 2
    if covers:
        return inner.crop((-left, -top, -left + width, -top + height))
    out = Image.new(image.mode, (width, height))
    out.paste(inner, (left, top))
    if top > 0:  # bands above and below
        out.paste(inner.crop((0, 0, inner_w, 1)).resize((inner_w, top)), (left, 0))
        bottom = height - top - inner_h
        if bottom > 0:
            out.paste(inner.crop((0, inner_h - 1, inner_w, inner_h)).resize((inner_w, bottom)), (left, top + inner_h))
    if left > 0:  # bands left and right
        out.paste(inner.crop((0, 0, 1, inner_h)).resize((left, inner_h)), (0, top))
        right = width - left - inner_w
        if right > 0:
            out.paste(inner.crop((inner_w - 1, 0, inner_w, inner_h)).resize((right, inner_h)), (left + inner_w, top))
    return out


def binary_mask(mask: Image.Image) -> Image.Image:
    """An "L" mask: a picture with real transparency (a brush layer) is masked where it is opaque; anything
    else by its brightness (white = repaint)."""
    if mask.mode in ("RGBA", "LA") and mask.getextrema()[-1] != (255, 255):
        return mask.getchannel("A").point(lambda v: 255 if v > 128 else 0)
    return mask.convert("L")


def blur_mask(mask: Image.Image, radius: int) -> Image.Image:
    """Gaussian blur of sigma `radius` pixels, across then down, with a kernel reaching 2.5 sigma each way."""
    if radius <= 0:
        return mask
    import cv2

    kernel = 2 * int(2.5 * radius + 0.5) + 1
    pixels = np.asarray(mask, dtype=np.uint8)
    pixels = cv2.GaussianBlur(pixels, (kernel, 1), radius)
    pixels = cv2.GaussianBlur(pixels, (1, kernel), radius)
    return Image.fromarray(pixels, "L")


def mask_region(mask: Image.Image, padding: int) -> tuple[int, int, int, int] | None:
    """(x1, y1, x2, y2) around every masked pixel, `padding` wider on each side within the picture; None for
    an empty mask."""
    box = mask.getbbox()
    if box is None:
        return None
    x1, y1, x2, y2 = box
    return max(x1 - padding, 0), max(y1 - padding, 0), min(x2 + padding, mask.width), min(y2 + padding, mask.height)


def grow_to_aspect(region, width: int, height: int, image_w: int, image_h: int) -> tuple[int, int, int, int]:
    """`region` grown on its short side, evenly, to the aspect ratio width:height, kept inside the picture
    (shifted back in where it would stick out; cut only when the picture itself is too small)."""
    x1, y1, x2, y2 = region
    w, h = x2 - x1, y2 - y1

    def grow(a: int, b: int, extra: int, limit: int) -> tuple[int, int]:
        a, b = a - extra // 2, b + extra - extra // 2
        if b > limit:
            a, b = a - (b - limit), limit
        if a < 0:
            a, b = 0, min(b - a, limit)
        return a, b

    if w * height > h * width:  # too wide: make it taller
        y1, y2 = grow(y1, y2, -(-w * height // width) - h, image_h)
    else:
        x1, x2 = grow(x1, x2, -(-h * width // height) - w, image_w)
    return x1, y1, x2, y2


def fill_masked(image: Image.Image, mask: Image.Image) -> Image.Image:
    """The masked area painted with the colours around it: blurs of the unmasked pixels, from a wide radius
    (the overall colour) to narrow ones (the colours at the edge), each weighted by how much unmasked
    picture it saw; unmasked pixels stay as they are."""
    import cv2

    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    keep = (np.asarray(mask.convert("L"), dtype=np.float32) < 128).astype(np.float32)
    if keep.sum() == 0:
        return image.convert("RGB")
    filled = np.broadcast_to(rgb[keep > 0].mean(axis=0), rgb.shape).copy()
    for radius in (64, 16, 4, 2):
        sigma = min(radius, max(image.size))
        weight = cv2.GaussianBlur(keep, (0, 0), sigma)
        colour = cv2.GaussianBlur(rgb * keep[..., None], (0, 0), sigma) / np.maximum(weight, 1e-6)[..., None]
        seen = np.clip(weight * 4, 0, 1)[..., None]  # trust a blur once a quarter of its window was picture
        filled = filled * (1 - seen) + colour * seen
    out = rgb * keep[..., None] + filled * (1 - keep[..., None])
    return Image.fromarray(np.clip(out.round(), 0, 255).astype(np.uint8), "RGB")


def overlay(result: Image.Image, original: Image.Image, repaint: Image.Image,
            paste_box: tuple[int, int, int, int] | None = None) -> Image.Image:
    """The original laid back over the result where `repaint` (L, blurred) is below 255: exactly the
    original where it is 0, blended where it is in between. With `paste_box` (Only masked), the result is
    first scaled into that box of the original-sized picture."""
    if paste_box is not None:
        x1, y1, x2, y2 = paste_box
        base = original.convert("RGB").copy()
        base.paste(resize_image(result, x2 - x1, y2 - y1, "Resize and fill"), (x1, y1))
        result = base
    kept = ImageOps.invert(repaint.convert("L"))
    return Image.composite(original.convert("RGB"), result.convert("RGB"), kept)


def outpaint_canvas(image: Image.Image, pixels: int, directions) -> tuple[Image.Image, Image.Image]:
    """The picture on a canvas `pixels` larger on each chosen side (its edge rows/columns stretched into the
    new area, a start the model then repaints), and the mask of the new area (white)."""
    left, right = pixels * ("left" in directions), pixels * ("right" in directions)
    top, bottom = pixels * ("up" in directions), pixels * ("down" in directions)
    width, height = image.width + left + right, image.height + top + bottom
    canvas = Image.new("RGB", (width, height))
    canvas.paste(image, (left, top))
    w, h = image.size
    for box, size, at in ((( 0, 0, w, 1), (w, top), (left, 0)), ((0, h - 1, w, h), (w, bottom), (left, top + h))):
        if size[1] > 0:
            canvas.paste(image.crop(box).resize(size), at)
    for box, size, at in (((left, 0, left + 1, height), (left, height), (0, 0)),
                          ((left + w - 1, 0, left + w, height), (right, height), (left + w, 0))):
        if size[0] > 0:
            canvas.paste(canvas.crop(box).resize(size), at)
    mask = Image.new("L", (width, height), 255)
    mask.paste(0, (left, top, left + w, top + h))
    return canvas, mask

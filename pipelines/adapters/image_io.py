"""Bring any image a user hands us (RGBA, 16-bit, palette, odd sizes, huge photos) to one predictable form.

Every condition goes through the same two steps, so the same file always gives the same map:
`to_rgb` (mode normalisation) then `fit` (scale to cover the generation size, centre-crop the overflow).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..requests import InvalidRequest, shown
from ..untrusted_images import MAX_INPUT_PIXELS, open_untrusted

FIELD = "adapters"


def open_image(source) -> Image.Image:
    """A PIL image from a PIL image, a path, raw bytes or a numpy array; InvalidRequest when unreadable."""
    if isinstance(source, Image.Image):
        if source.width * source.height > MAX_INPUT_PIXELS:
            raise InvalidRequest(FIELD, f"the condition image is {source.width}x{source.height} pixels; pictures of "
                                        f"at most {MAX_INPUT_PIXELS / 1e6:.0f} million pixels are accepted")
        return source
    if isinstance(source, np.ndarray):
        try:
            return Image.fromarray(source)
        except (TypeError, ValueError) as error:
            raise InvalidRequest(FIELD, f"cannot read an image from an array of shape {source.shape} "
                                        f"and dtype {source.dtype}: {error}") from error
    if isinstance(source, (str, Path)):
        try:
            exists = Path(source).is_file()
        except (OSError, ValueError):  # a name too long, a NUL byte
            exists = False
        if not exists:
            raise InvalidRequest(FIELD, f"condition image {shown(str(source))} does not exist")
    elif not isinstance(source, (bytes, bytearray)):
        raise InvalidRequest(FIELD, f"a condition image must be a PIL image, a path or bytes, "
                                    f"not {type(source).__name__}")
    return open_untrusted(source, FIELD)


def _high_bit_depth_to_8bit(image: Image.Image) -> Image.Image:
    """16-bit and float greyscale: scale the full range of the type to 0..255 (depth maps are often 16-bit)."""
    values = np.asarray(image)
    if values.dtype.kind == "f":
        low, high = float(np.nanmin(values)), float(np.nanmax(values))
        scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
        return Image.fromarray(np.nan_to_num(scaled * 255.0).round().astype(np.uint8))
    # Integer modes ("I;16", "I"): PNG 16-bit stores 0..65535 whatever the content.
    top = 65535.0 if values.max(initial=0) <= 65535 else float(values.max())
    return Image.fromarray((np.clip(values, 0, None) / top * 255.0).round().astype(np.uint8))


def to_rgb(image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """RGB, 8 bits per channel, upright. Transparent pixels become `background` (white: a drawing's paper)."""
    try:
        image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError):
        pass  # broken EXIF block: keep the pixels as stored
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        image = _high_bit_depth_to_8bit(image)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        image = image.convert("RGBA")
        canvas = Image.new("RGBA", image.size, background + (255,))
        image = Image.alpha_composite(canvas, image)
    return image.convert("RGB")


def fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale to cover width x height keeping the aspect ratio, then crop the centre. Exactly (width, height)."""
    if image.size == (width, height):
        return image
    scale = max(width / image.width, height / image.height)
    new_size = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
    if scale < 0.5:  # a large photo: a cheap box reduce first keeps LANCZOS fast
        image = image.reduce(max(1, int(1 / (2 * scale))))
    resized = image.resize(new_size, Image.LANCZOS)
    left, top = (new_size[0] - width) // 2, (new_size[1] - height) // 2
    return resized.crop((left, top, left + width, top + height))


def load_condition_image(source, width: int, height: int) -> Image.Image:
    """Open, normalise and fit a condition image: RGB, exactly (width, height)."""
    if width <= 0 or height <= 0:
        raise InvalidRequest(FIELD, f"the condition size must be positive, got {width}x{height}")
    return fit(to_rgb(open_image(source)), width, height)

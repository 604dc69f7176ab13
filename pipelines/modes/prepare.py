"""An image-to-image or inpainting request's picture side, prepared once per request (A1111's img2img init).

- Image to image: the init picture at width x height by the resize mode.
- Inpainting, Whole picture: picture and mask at width x height by the resize mode; the mask blurred; the
  original is laid back where the blurred mask, doubled, stays below white.
- Inpainting, Only masked: the region around the blurred mask (padded, grown to width:height) is cut out of
  the full-size picture and scaled to width x height; the result is scaled back into it, and the picture
  keeps its own size.
- Outpainting: the picture (at width x height) on a larger canvas, the new area as the mask, blurred only
  into the new area so that every original pixel is kept.
Masked content other than "original" paints the masked area with the colours around it before encoding
(and "latent noise" / "latent nothing" then replace its latents: pipelines/modes/start.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image, ImageChops

from pipelines.modes.images import (binary_mask, blur_mask, fill_masked, flatten, grow_to_aspect, mask_region,
                                    outpaint_canvas, overlay, resize_image)
from pipelines.requests import GenerationRequest, InvalidRequest


@dataclass(frozen=True)
class PreparedPicture:
    pixels: Image.Image  # what is encoded: the generation size (the canvas, for outpainting)
    mask: Image.Image | None  # "L" at the size of `pixels`, blurred: where the picture is repainted
    finish: Callable[[Image.Image], Image.Image]  # a generated picture (size of `pixels`) -> the result
    unchanged: Image.Image  # the result of strength 0: the input as the output would frame it

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.size


def _same(image: Image.Image) -> Image.Image:
    return image


def _doubled(mask: Image.Image) -> Image.Image:
    """A1111's overlay mask for the whole picture: the blurred mask times two, so the generated picture shows
    fully from its halfway line inward, and the original exactly where the blurred mask is 0."""
    return mask.point(lambda v: min(255, 2 * v))


def prepare_picture(request: GenerationRequest) -> PreparedPicture:
    width, height = request.width, request.height
    image = flatten(request.init_image)
    if request.mode == "img2img":
        pixels = resize_image(image, width, height, request.resize_mode)
        return PreparedPicture(pixels, None, _same, pixels)
    blur = request.mask_blur or 0
    if request.outpaint_pixels:
        base = resize_image(image, width, height, request.resize_mode)
        canvas, new_area = outpaint_canvas(base, request.outpaint_pixels, request.outpaint_directions)
        mask = ImageChops.multiply(blur_mask(new_area, blur), new_area)  # blurred outward only
        return _finished(request, canvas, mask, lambda out: overlay(out, canvas, _doubled(mask)), canvas)
    mask = binary_mask(request.mask)
    if mask.size != image.size:
        mask = mask.resize(image.size, Image.BILINEAR)
    mask = blur_mask(mask, blur)
    if request.inpaint_area == "Only masked":
        region = mask_region(mask, request.inpaint_padding)
        if region is None:
            raise InvalidRequest("mask", "is empty: paint over the area to repaint")
        region = grow_to_aspect(region, width, height, image.width, image.height)
        pixels = resize_image(image.crop(region), width, height, "Resize and fill")
        crop_mask = resize_image(mask.crop(region), width, height, "Resize and fill")
        return _finished(request, pixels, crop_mask, lambda out: overlay(out, image, mask, paste_box=region), image)
    pixels = resize_image(image, width, height, request.resize_mode)
    mask = resize_image(mask, width, height, request.resize_mode)
    return _finished(request, pixels, mask, lambda out: overlay(out, pixels, _doubled(mask)), pixels)


def _finished(request, pixels, mask, finish, unchanged) -> PreparedPicture:
    if (request.masked_content or "original") != "original":
        pixels = fill_masked(pixels, mask)
    return PreparedPicture(pixels, mask, finish, unchanged)


def latent_mask(mask: Image.Image, latent_size: tuple[int, int]) -> np.ndarray:
    """1 where the latent is repainted, 0 where it is kept: the blurred mask scaled to the latent grid and
    rounded (A1111's `latmask`)."""
    small = np.asarray(mask.convert("L").resize(latent_size, Image.BICUBIC), dtype=np.float32) / 255.0
    return np.around(small)

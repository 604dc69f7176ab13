"""What image-to-image, inpainting, outpainting and hires-fix requests may hold. Each problem names the field
and what is allowed; a setting of another mode (a mask blur without a mask) is refused, not ignored, so the
saved settings never claim what did not happen."""
from __future__ import annotations

import math
import numbers

from PIL import Image

from pipelines.families import MODES, Family, Limits
from pipelines.modes import (HIRES_UPSCALERS, INPAINT_AREAS, MASKED_CONTENT, MAX_HIRES_SCALE, OUTPAINT_DIRECTIONS,
                             RESIZE_MODES)
from pipelines.modes.images import binary_mask
from pipelines.requests import GenerationRequest, InvalidRequest

MAX_MASK_BLUR = 64
MAX_PADDING = 256


def _number(name: str, value, low: float, high: float, *, whole: bool = False) -> None:
    kind = "a whole number" if whole else "a number"
    wrong = isinstance(value, bool) or not isinstance(value, numbers.Integral if whole else numbers.Real)
    if wrong or not math.isfinite(value):
        raise InvalidRequest(name, f"must be {kind} from {low:g} to {high:g}, got {value!r}")
    if not low <= value <= high:
        raise InvalidRequest(name, f"must be from {low:g} to {high:g}, got {value:g}")


def _choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise InvalidRequest(name, f"must be one of {', '.join(map(repr, allowed))}, got {value!r}")


def _picture(name: str, value) -> None:
    if not isinstance(value, Image.Image):
        raise InvalidRequest(name, f"must be a picture (a PIL image), got {type(value).__name__}")
    if value.width < 8 or value.height < 8:
        raise InvalidRequest(name, f"must be at least 8x8 pixels, got {value.width}x{value.height}")


def _size_fits(name: str, width: int, height: int, limits: Limits, what: str) -> None:
    low, high, step = limits.min_size, limits.max_size, limits.size_multiple
    for side in (width, height):
        if not low <= side <= high or side % step:
            raise InvalidRequest(name, f"{what} would be {width}x{height}; each side must be a multiple of {step} "
                                       f"from {low} to {high}")


def validate_modes(request: GenerationRequest, family: Family) -> None:
    """Raise InvalidRequest for the first image-mode setting that is out of range or out of place."""
    mode = request.mode
    if mode not in family.pipelines:
        raise InvalidRequest("model", f"{family.label} models offer no {MODES[mode].label}; "
                                      f"they offer {', '.join(MODES[m].label for m in family.modes)}")
    if request.init_image is None:
        for name in ("mask", "denoising_strength"):
            if getattr(request, name) is not None:
                raise InvalidRequest(name, "only for image to image and inpainting: give init_image too")
        if request.outpaint_pixels or request.outpaint_directions:
            raise InvalidRequest("outpaint_pixels", "outpainting extends init_image: give init_image too")
    else:
        _picture("init_image", request.init_image)
        if request.denoising_strength is not None:
            _number("denoising_strength", request.denoising_strength, 0.0, 1.0)
    _choice("resize_mode", request.resize_mode, RESIZE_MODES)
    _inpainting(request, family)
    _hires(request, family.limits)


def _inpainting(request: GenerationRequest, family: Family) -> None:
    inpainting = request.mode == "inpaint"
    for name in ("mask_blur", "inpaint_area", "masked_content"):
        if not inpainting and getattr(request, name) is not None:
            raise InvalidRequest(name, "only for inpainting and outpainting: give a mask (or outpaint_pixels)")
    if request.mask_blur is not None:
        _number("mask_blur", request.mask_blur, 0, MAX_MASK_BLUR, whole=True)
    if request.inpaint_area is not None:
        _choice("inpaint_area", request.inpaint_area, INPAINT_AREAS)
    if request.masked_content is not None:
        _choice("masked_content", request.masked_content, MASKED_CONTENT)
    _number("inpaint_padding", request.inpaint_padding, 0, MAX_PADDING, whole=True)
    _number("outpaint_pixels", request.outpaint_pixels, 0, family.limits.max_size, whole=True)
    directions = request.outpaint_directions
    if not isinstance(directions, tuple) or any(d not in OUTPAINT_DIRECTIONS for d in directions):
        raise InvalidRequest("outpaint_directions", f"must name sides among {', '.join(OUTPAINT_DIRECTIONS)}, "
                                                    f"got {directions!r}")
    if bool(request.outpaint_pixels) != bool(directions):
        raise InvalidRequest("outpaint_pixels", "outpainting needs both a number of pixels and at least one side "
                                                "(outpaint_directions)")
    if request.outpaint_pixels:
        step = family.limits.size_multiple
        if request.outpaint_pixels % step:
            raise InvalidRequest("outpaint_pixels", f"must be a multiple of {step}, got {request.outpaint_pixels}")
        if request.mask is not None:
            raise InvalidRequest("mask", "outpainting makes its own mask (the new area): leave mask empty")
        if request.inpaint_area == "Only masked":
            raise InvalidRequest("inpaint_area", "outpainting repaints the whole new area: use Whole picture")
        grown = (request.width + request.outpaint_pixels * (("left" in directions) + ("right" in directions)),
                 request.height + request.outpaint_pixels * (("up" in directions) + ("down" in directions)))
        _size_fits("outpaint_pixels", *grown, family.limits, "the outpainted picture")
        if request.adapters:
            raise InvalidRequest("adapters", "adapters condition width x height; outpainting changes the size")
    if request.mask is not None:
        _picture("mask", request.mask)
        if binary_mask(request.mask).getbbox() is None:
            raise InvalidRequest("mask", "is empty: paint (white, or opaque) over the area to repaint")
        if request.inpaint_area == "Only masked" and request.adapters:
            raise InvalidRequest("adapters", "Only masked repaints a crop of the picture, which the condition "
                                             "maps do not show: use Whole picture with adapters")


def _hires(request: GenerationRequest, limits: Limits) -> None:
    _number("hires_scale", request.hires_scale, 1.0, MAX_HIRES_SCALE)
    if not request.hires:
        return
    if request.init_image is not None:
        raise InvalidRequest("hires_scale", "hires fix belongs to text to image; leave it at 1 with init_image")
    _number("hires_steps", request.hires_steps, 0, limits.max_steps, whole=True)
    _choice("hires_upscaler", request.hires_upscaler, HIRES_UPSCALERS)
    _number("hires_denoising", request.hires_denoising, 0.0, 1.0)
    width, height = hires_size(request)
    _size_fits("hires_scale", width, height, limits, f"the upscaled picture ({request.hires_scale:g}x)")


def hires_size(request: GenerationRequest) -> tuple[int, int]:
    """The second pass's size: width and height times hires_scale, rounded down (as A1111 does)."""
    return int(request.width * request.hires_scale), int(request.height * request.hires_scale)

"""Image to image, inpainting, outpainting and hires fix, on the same sampling core as text to image.

- `images`: the picture work (resize modes, masks, fill, putting the original back), PIL and numpy only.
- `prepare`: an img2img / inpaint request's picture, mask and finishing step at the generation size.
- `start`: where sampling starts from an init latent (A1111's and diffusers' step counting).
- `run`: the runs themselves (image to image and inpainting; hires fix), called by pipelines.generation.
- `validation`: what these requests may hold, checked before any work.

A request's mode follows from its fields (GenerationRequest.mode): an init_image makes it image to image, a
mask (or outpainting) with it inpainting; hires_scale > 1 adds the hires fix to text to image.
"""
from __future__ import annotations

from pipelines.modes.images import OUTPAINT_DIRECTIONS, RESIZE_MODES
from pipelines.requests import GenerationRequest

MASKED_CONTENT = ("original", "fill", "latent noise", "latent nothing")  # A1111's "Masked content"
INPAINT_AREAS = ("Whole picture", "Only masked")  # A1111's "Inpaint area"
# A1111's latent upscale modes (torch interpolation mode, antialias) and its built-in image upscalers
LATENT_UPSCALERS = {"Latent": ("bilinear", False), "Latent (antialiased)": ("bilinear", True),
                    "Latent (bicubic)": ("bicubic", False), "Latent (bicubic antialiased)": ("bicubic", True),
                    "Latent (nearest)": ("nearest", False), "Latent (nearest-exact)": ("nearest-exact", False)}
IMAGE_UPSCALERS = ("None", "Lanczos", "Nearest")  # "None": a plain Lanczos resize, as in A1111
HIRES_UPSCALERS = (*LATENT_UPSCALERS, *IMAGE_UPSCALERS)
MAX_HIRES_SCALE = 4.0
DEFAULT_DENOISING = 0.75  # A1111's img2img default
DEFAULT_MASK_BLUR = 4


def with_defaults(request: GenerationRequest) -> GenerationRequest:
    """The request with the mode's unset settings at A1111's defaults (as a random seed is resolved), so the
    saved settings say what ran: strength 0.75; mask blur 4, whole picture, masked content "original" (for
    outpainting "fill": its new area has no original to keep)."""
    changes = {}
    if request.init_image is not None and request.denoising_strength is None:
        changes["denoising_strength"] = DEFAULT_DENOISING
    if request.mode == "inpaint":
        if request.mask_blur is None:
            changes["mask_blur"] = DEFAULT_MASK_BLUR
        if request.inpaint_area is None:
            changes["inpaint_area"] = "Whole picture"
        if request.masked_content is None:
            changes["masked_content"] = "fill" if request.outpaint_pixels else "original"
    return request.with_(**changes) if changes else request


__all__ = ["MASKED_CONTENT", "INPAINT_AREAS", "LATENT_UPSCALERS", "IMAGE_UPSCALERS", "HIRES_UPSCALERS",
           "RESIZE_MODES", "OUTPAINT_DIRECTIONS", "MAX_HIRES_SCALE", "DEFAULT_DENOISING", "DEFAULT_MASK_BLUR",
           "with_defaults"]

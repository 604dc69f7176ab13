"""`generate`'s flags for image to image, inpainting, outpainting and the hires fix.

    python -m studio generate --prompt "a blue circle" --init-image red.png --denoising-strength 0.6
    python -m studio generate --prompt "a yellow star" --init-image scene.png --mask mask.png --mask-blur 4
    python -m studio generate --prompt "a blue background" --init-image scene.png --outpaint 32 --outpaint-side right
    python -m studio generate --prompt "a red circle" --hires-scale 2 --hires-upscaler Latent --hires-denoising 0.6

Without --width/--height, image to image and inpainting use the picture's own size, fitted to the model.
"""
from __future__ import annotations

import argparse

from pathlib import Path

from pipelines.modes import HIRES_UPSCALERS, INPAINT_AREAS, MASKED_CONTENT, OUTPAINT_DIRECTIONS, RESIZE_MODES
from pipelines.requests import InvalidRequest


def add_mode_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("image to image, inpainting and outpainting")
    group.add_argument("--init-image", metavar="PATH", help="start from this picture (image to image)")
    group.add_argument("--denoising-strength", type=float, metavar="X",
                       help="0 (the picture back) to 1 (all new); default 0.75")
    group.add_argument("--resize-mode", choices=RESIZE_MODES, help=f"default: {RESIZE_MODES[0]}")
    group.add_argument("--mask", metavar="PATH", help="inpaint where this mask is white (or opaque)")
    group.add_argument("--mask-blur", type=int, metavar="PX", help="default 4")
    group.add_argument("--inpaint-area", choices=INPAINT_AREAS, help="default: Whole picture")
    group.add_argument("--inpaint-padding", type=int, metavar="PX", help="Only masked: pixels around it (32)")
    group.add_argument("--masked-content", choices=MASKED_CONTENT,
                       help="what the masked area starts from: original (default), fill (outpainting's default), ...")
    group.add_argument("--outpaint", type=int, metavar="PX", help="extend the picture by PX pixels (a multiple of 8)")
    group.add_argument("--outpaint-side", action="append", choices=OUTPAINT_DIRECTIONS, default=[],
                       help="a side to extend; repeat for several")
    hires = parser.add_argument_group("hires fix (text to image)")
    hires.add_argument("--hires-scale", type=float, metavar="X", help="upscale by X (1 to 4) and denoise again")
    hires.add_argument("--hires-steps", type=int, metavar="N", help="second-pass steps (0: the same as --steps)")
    hires.add_argument("--hires-upscaler", choices=HIRES_UPSCALERS, help="default: Latent")
    hires.add_argument("--hires-denoising", type=float, metavar="X", help="second-pass strength (default 0.7)")


FLAG_FIELDS = {"denoising_strength": "denoising_strength", "resize_mode": "resize_mode", "mask_blur": "mask_blur",
               "inpaint_area": "inpaint_area", "inpaint_padding": "inpaint_padding",
               "masked_content": "masked_content", "outpaint": "outpaint_pixels", "hires_scale": "hires_scale",
               "hires_steps": "hires_steps", "hires_upscaler": "hires_upscaler",
               "hires_denoising": "hires_denoising"}


def mode_fields(args: argparse.Namespace) -> dict:
    """The request fields the flags set; the pictures are read now, so a missing file is named before any model
    loads. A flag left out leaves the request's default."""
    fields = {field: getattr(args, flag) for flag, field in FLAG_FIELDS.items() if getattr(args, flag) is not None}
    if args.outpaint_side:
        fields["outpaint_directions"] = tuple(args.outpaint_side)
    if args.init_image:
        fields["init_image"] = read_picture("init_image", args.init_image)
    if args.mask:
        if not args.init_image:
            raise InvalidRequest("mask", "--mask needs --init-image (the picture to inpaint)")
        fields["mask"] = read_picture("mask", args.mask)
    return fields


def read_picture(field: str, path: str):
    from PIL import Image, UnidentifiedImageError

    if not Path(path).is_file():
        raise InvalidRequest(field, f"{path!r} does not exist")
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (UnidentifiedImageError, OSError) as error:
        raise InvalidRequest(field, f"{path!r} is not a picture this studio can read ({error})") from None

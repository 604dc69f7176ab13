"""Reading our own `studio_request` chunk: the GenerationRequest as JSON.

Files from before `schedule_type` existed name the schedule in the sampler ("DPM++ 2M Karras"); a plain
name then ran the scheduler's default, evenly spaced sigmas. Condition images are not stored, so adapters
are shown, not sent.
"""
from __future__ import annotations

from dataclasses import fields

from pipelines.metadata import names
from pipelines.metadata.settings import Collector, PngSettings, load_json
from pipelines.requests import GenerationRequest

REQUEST_FIELDS = tuple(f.name for f in fields(GenerationRequest))
PICTURES = ("init_image", "mask")  # described ({"width", "height"}), not stored: shown, not sent
HIRES = ("hires_scale", "hires_steps", "hires_upscaler", "hires_denoising")
PICTURE_MODE = ("denoising_strength", "resize_mode", "mask_blur", "inpaint_area", "inpaint_padding",
                "masked_content", "outpaint_pixels", "outpaint_directions")


def _unused(data: dict) -> set[str]:
    """The settings of modes the request did not use (no hires fix, no init picture, no inpainting)."""
    unused = {key for key in (*HIRES, *PICTURE_MODE) if data.get(key) is None}
    if not isinstance(data.get("hires_scale"), (int, float)) or data["hires_scale"] <= 1:
        unused.update(HIRES)
    if data.get("denoising_strength") is None:
        unused.update(PICTURE_MODE)
    if data.get("mask_blur") is None:
        unused.update(("inpaint_padding", "outpaint_pixels", "outpaint_directions"))
    return unused


def read_studio_request(text: str) -> PngSettings | None:
    out = Collector("Diffusion Studio", "studio_request")
    data = load_json(text, "studio_request", out)
    if not isinstance(data, dict):
        return None
    unused = _unused(data)
    for key, value in data.items():
        if key == "loras" and isinstance(value, list):
            out.loras([tuple(pair) for pair in value if isinstance(pair, (list, tuple)) and len(pair) == 2])
        elif key in PICTURES:
            out.keep(key, value)
        elif key in unused:
            continue
        elif key in REQUEST_FIELDS and key != "adapters":
            out.fields[key] = value
        else:
            out.keep(key, value)
    if "schedule_type" not in data and isinstance(data.get("scheduler"), str):
        out.sampler(names.to_a1111(data["scheduler"], unstated=names.PLAIN), data["scheduler"])
    return out.settings()

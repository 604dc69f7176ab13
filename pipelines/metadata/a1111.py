"""Reading AUTOMATIC1111-style `parameters` text (A1111, Forge, SD.Next, Fooocus' "a1111" scheme, Civitai).

Keys with a request field become that field; every other key is kept in `unknown` as written. A missing
"Schedule type" means what it meant when A1111 wrote no schedule type: before 1.9 a plain "DPM++ 2M" ran
evenly spaced sigmas (the Karras variant had its own name), and from 1.9 on A1111 always writes the schedule
of samplers that have one; so a plain name reads as "Uniform" where A1111's Automatic would differ.
"""
from __future__ import annotations

import re

from pipelines.metadata import names
from pipelines.metadata.a1111_text import split_parameters
from pipelines.metadata.settings import Collector, PngSettings

FIELDS = {"Steps": "steps", "CFG scale": "guidance_scale", "Seed": "seed", "Model": "model",
          "Clip skip": "clip_skip", "Variation seed": "variation_seed",
          "Variation seed strength": "variation_strength", "Hires upscale": "hires_scale",
          "Hires steps": "hires_steps", "Hires upscaler": "hires_upscaler", "Mask blur": "mask_blur",
          "Inpaint area": "inpaint_area", "Masked content": "masked_content",
          "Masked area padding": "inpaint_padding",
          "Adapter conditioning factor": "adapter_conditioning_factor", "Step cache": "step_cache"}
HIRES_KEYS = ("Hires upscale", "Hires steps", "Hires upscaler", "Hires resize")
SIZE_RE = re.compile(r"\s*(\d+)\s*x\s*(\d+)\s*")


def source_of(params: dict[str, str], fooocus: bool = False) -> str:
    """Which A1111-family studio wrote the text, from its Version / App fields."""
    version = params.get("Version", "")
    if fooocus or version.startswith("Fooocus"):
        return "Fooocus"
    if params.get("App") == "SD.Next":
        return "SD.Next"
    if re.match(r"f\d", version) or version.startswith("neo"):
        return "Forge"
    if version == "ComfyUI":
        return "ComfyUI"
    if version == "Diffusion Studio":
        return "Diffusion Studio"
    return "AUTOMATIC1111"


def _loras(text: str) -> list[tuple[str, str]]:
    """Our "Loras: path:weight, ..." (and Fooocus' "Lora weights: name: weight, ..."): split at the last colon."""
    pairs = []
    for item in text.split(","):
        if item.strip():
            name, _, weight = item.strip().rpartition(":")
            pairs.append((name.strip(), weight.strip()))
    return pairs


def _sampler(out: Collector, params: dict[str, str], used: set[str]) -> None:
    written = params["Sampler"]
    key = "Schedule type" if "Schedule type" in params else "Scheduler"  # "Scheduler": Fooocus' ComfyUI name
    stated = params.get(key)
    used.update(("Sampler", key))
    name = names.to_a1111(written, stated, unstated=names.PLAIN)
    if stated and names.schedule_label(stated) != name.schedule_type:
        out.note(f"the sampler name {written!r} and the schedule {stated!r} disagree; the name's schedule "
                 "is used, as A1111 does")
        out.keep(key, stated)
    out.sampler(name, written)


def read_parameters(text: str, *, chunk: str = "parameters", fooocus: bool = False) -> PngSettings:
    prompt, negative, params = split_parameters(text)
    out = Collector(source_of(params, fooocus), chunk)
    out.fields.update(prompt=prompt, negative_prompt=negative)
    used = {"Size", "Denoising strength"}
    for key, field in FIELDS.items():
        if key in params:
            out.set(field, params[key], key)
            used.add(key)
    if "Sampler" in params:
        _sampler(out, params, used)
    if "Size" in params:
        size = SIZE_RE.fullmatch(params["Size"])
        if size:
            out.set("width", size.group(1), "Size")
            out.set("height", size.group(2), "Size")
        else:
            out.keep("Size", params["Size"])
            out.note(f"Size: {params['Size']!r} is not WIDTHxHEIGHT")
    if "Denoising strength" in params:
        hires = any(key in params for key in HIRES_KEYS)
        out.set("hires_denoising" if hires else "denoising_strength", params["Denoising strength"],
                "Denoising strength")
    lora_key = "Loras" if "Loras" in params else "Lora weights"
    if params.get(lora_key):
        out.loras(_loras(params[lora_key]), lora_key)
        used.add(lora_key)
    for key, value in params.items():
        if key not in used:
            out.keep(key, value)
    return out.settings()

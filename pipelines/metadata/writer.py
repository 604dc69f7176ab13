"""Writing PNG metadata the way AUTOMATIC1111 1.10 does, plus our exact request as JSON.

    a watercolor fox
    Negative prompt: blurry
    Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 512x512, Model hash: 6ce0161689, Model: sd15, Version: Diffusion Studio

"Sampler" and "Schedule type" are written as A1111 1.10 writes them (pipelines.schedulers.a1111_sampler_fields):
the schedule the sampler ran on, "Automatic" where that is the sampler's plain default (Euler a, DDIM, ...).
"Model hash" comes from the caller (hashes.FileHashes: single-file checkpoints only). The `studio_request`
chunk holds the request itself, so our own files read back exactly.
"""
from __future__ import annotations

import json
from typing import Any

from PIL.PngImagePlugin import PngInfo

from pipelines.metadata.a1111_text import NEGATIVE_PREFIX, number, settings_line
from pipelines.requests import GenerationRequest

PARAMETERS_KEY = "parameters"
REQUEST_KEY = "studio_request"
STUDIO_VERSION = "Diffusion Studio"


def _as_dict(request_like) -> dict:
    if isinstance(request_like, GenerationRequest):
        return request_like.to_json_dict()
    return dict(request_like)


def _optional_fields(r: dict) -> dict[str, Any]:
    """Settings other parts of the studio add to the request, named as A1111 names them."""
    out: dict[str, Any] = {}
    if isinstance(r.get("clip_skip"), int) and r["clip_skip"] > 1:
        out["Clip skip"] = r["clip_skip"]
    if r.get("variation_strength"):
        out["Variation seed"] = r.get("variation_seed")
        out["Variation seed strength"] = number(r["variation_strength"])
    if r.get("denoising_strength") is not None:
        out["Denoising strength"] = number(r["denoising_strength"])
    if isinstance(r.get("hires_scale"), (int, float)) and r["hires_scale"] > 1:
        out["Hires upscale"] = number(r["hires_scale"])
        out["Hires steps"] = r.get("hires_steps")
        out["Hires upscaler"] = r.get("hires_upscaler")
        if r.get("hires_denoising") is not None:
            out["Denoising strength"] = number(r["hires_denoising"])
    for key, label in (("mask_blur", "Mask blur"), ("inpaint_area", "Inpaint area"),
                       ("masked_content", "Masked content")):
        if r.get(key) is not None:
            out[label] = r[key]
        if key == "inpaint_area" and r.get(key) == "Only masked":  # A1111 writes the padding after it
            out["Masked area padding"] = r.get("inpaint_padding")
    return out


def a1111_parameters(request_like, extra: dict[str, Any] | None = None) -> str:
    """The `parameters` text for one image (its concrete seed) of a request or a dict of its fields."""
    r = _as_dict(request_like)
    lines = [str(r.get("prompt", ""))]
    if r.get("negative_prompt"):
        lines.append(f"{NEGATIVE_PREFIX} {r['negative_prompt']}")
    params: dict[str, Any] = {"Steps": r.get("steps")}
    from pipelines.schedulers import a1111_sampler_fields  # the registry imports this package's names.py

    params.update(a1111_sampler_fields(str(r.get("scheduler", "")), r.get("schedule_type", "Automatic")))
    params["CFG scale"] = number(r.get("guidance_scale", 0))
    params["Seed"] = r.get("seed")
    params["Size"] = f"{r.get('width')}x{r.get('height')}"
    extra = dict(extra or {})
    if "Model hash" in extra:  # A1111's order: hash, then name
        params["Model hash"] = extra.pop("Model hash")
    params["Model"] = r.get("model")
    params.update(_optional_fields(r))
    if r.get("loras"):
        params["Loras"] = ", ".join(f"{path}:{number(weight)}" for path, weight in r["loras"])
    for k, adapter in enumerate(r.get("adapters") or ()):
        params[f"Adapter {k}"] = f"kind: {adapter['kind']}, weight: {number(adapter['weight'])}, " \
                                 f"preprocess: {adapter.get('preprocess', False)}"
    if float(r.get("adapter_conditioning_factor", 1.0)) != 1.0:
        params["Adapter conditioning factor"] = number(r["adapter_conditioning_factor"])
    if r.get("step_cache"):
        params["Step cache"] = int(r["step_cache"])
    params.update(extra)
    params["Version"] = STUDIO_VERSION
    lines.append(settings_line(params))
    return "\n".join(lines)


def png_info(request: GenerationRequest, extra: dict[str, Any] | None = None) -> PngInfo:
    info = PngInfo()
    info.add_text(PARAMETERS_KEY, a1111_parameters(request, extra))
    info.add_text(REQUEST_KEY, json.dumps(request.to_json_dict(), ensure_ascii=False))
    return info

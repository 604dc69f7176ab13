"""Reading Easy Diffusion images: one PNG text chunk per setting, named either like its request
("prompt", "negative_prompt", "seed", "use_stable_diffusion_model", "sampler_name", "num_inference_steps",
"guidance_scale", "clip_skip" (true/false), ...) or for display ("Prompt", "Negative Prompt", "Seed",
"Stable Diffusion model", "Sampler", "Steps", "Guidance Scale", "Clip Skip", ...); in JPEG/WebP the same keys
as JSON in the EXIF UserComment. Its own "prompt" chunk is why it is recognised before ComfyUI's.
"""
from __future__ import annotations

from pipelines.metadata import names
from pipelines.metadata.settings import Collector, PngSettings

FIELDS = {"prompt": "prompt", "Prompt": "prompt", "negative_prompt": "negative_prompt",
          "Negative Prompt": "negative_prompt", "seed": "seed", "Seed": "seed", "width": "width", "Width": "width",
          "height": "height", "Height": "height", "num_inference_steps": "steps", "Steps": "steps",
          "guidance_scale": "guidance_scale", "Guidance Scale": "guidance_scale",
          "use_stable_diffusion_model": "model", "Stable Diffusion model": "model"}
SAMPLER_KEYS = ("sampler_name", "Sampler")
CLIP_SKIP_KEYS = ("clip_skip", "Clip Skip")
MARKERS = ("negative_prompt", "Negative Prompt", "use_stable_diffusion_model", "Stable Diffusion model")


def is_easy_diffusion(data: dict) -> bool:
    return any(key in data for key in MARKERS)


def read_easy_diffusion(data: dict, chunk: str = "text chunks") -> PngSettings:
    out = Collector("Easy Diffusion", chunk)
    for key, field in FIELDS.items():
        if key in data:
            out.set(field, data[key], key)
    out.fields.setdefault("negative_prompt", "")
    used = set(FIELDS)
    for key in SAMPLER_KEYS:
        if data.get(key):
            out.sampler(names.to_a1111(str(data[key]), unstated=names.PLAIN), str(data[key]))
            used.add(key)
    for key in CLIP_SKIP_KEYS:
        if str(data.get(key)).lower() in ("true", "false"):  # a switch: skip the last layer or not
            out.set("clip_skip", 2 if str(data[key]).lower() == "true" else 1, key)
            used.add(key)
    for key, value in data.items():
        if key not in used:
            out.keep(key, value)
    return out.settings()

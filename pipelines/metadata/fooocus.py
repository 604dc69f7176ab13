"""Reading Fooocus images.

Fooocus 2.2+ writes `parameters` plus `fooocus_scheme`: with scheme "fooocus", `parameters` is JSON (prompt,
negative_prompt, steps, resolution "(w, h)", guidance_scale, sampler / scheduler in ComfyUI's names, seed as a
string, base_model, base_model_hash, loras [[name, weight, hash]] or lora_combined_N "name : weight",
styles, performance, sharpness, ...); with scheme "a1111" it is A1111 text (read by a1111.py). In JPEG/WebP the
same text is the EXIF UserComment and the scheme the MakerNote. Older Fooocus forks wrote a JSON `Comment`
(prompt, negative_prompt, base_model, sampler, seed, cfg, steps, width, height).
"""
from __future__ import annotations

import re

from pipelines.metadata import names
from pipelines.metadata.settings import Collector, PngSettings

RESOLUTION_RE = re.compile(r"\(\s*(\d+)\s*,\s*(\d+)\s*\)")
DIRECT = {"prompt": "prompt", "negative_prompt": "negative_prompt", "steps": "steps", "seed": "seed",
          "guidance_scale": "guidance_scale", "cfg": "guidance_scale", "width": "width", "height": "height",
          "clip_skip": "clip_skip", "base_model": "model", "image_number": "num_images"}
SKIP_EMPTY = ("None", "", None)


def _loras(data: dict, out: Collector) -> None:
    pairs = []
    if isinstance(data.get("loras"), list):
        for item in data["loras"]:
            if isinstance(item, (list, tuple)) and len(item) >= 2:
                pairs.append((item[0], item[1]))
                if len(item) > 2:
                    out.keep(f"LoRA hash {item[0]}", item[2])
    else:
        for key in sorted(k for k in data if k.startswith("lora_combined_")):
            parts = [p.strip() for p in str(data[key]).split(" : ")]
            if len(parts) == 3 and parts[0] in ("True", "False"):
                if parts[0] == "False":
                    out.keep(key, data[key])
                    continue
                parts = parts[1:]
            if len(parts) == 2 and parts[0] not in SKIP_EMPTY:
                pairs.append((parts[0], parts[1]))
    if pairs:
        out.loras(pairs)


def read_fooocus_json(data: dict, chunk: str = "parameters") -> PngSettings:
    out = Collector("Fooocus", chunk)
    for key, field in DIRECT.items():
        if key in data and data[key] not in SKIP_EMPTY:
            out.set(field, data[key], key)
    out.fields.setdefault("negative_prompt", "")
    resolution = RESOLUTION_RE.fullmatch(str(data.get("resolution", "")).strip())
    if resolution:
        out.set("width", resolution.group(1), "resolution")
        out.set("height", resolution.group(2), "resolution")
    elif "resolution" in data:
        out.keep("resolution", data["resolution"])
    if data.get("sampler"):
        written = str(data["sampler"])
        out.sampler(names.to_a1111(written, data.get("scheduler") or None, unstated="Normal"), written)
    _loras(data, out)
    used = {*DIRECT, "resolution", "sampler", "scheduler", "loras"}
    for key, value in data.items():
        if key not in used and not key.startswith("lora_combined_") and value not in SKIP_EMPTY:
            out.keep(key, value)
    return out.settings()

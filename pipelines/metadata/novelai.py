"""Reading NovelAI images: `Software` "NovelAI", `Description` (the prompt), `Source` (model name and hash),
and `Comment`, a JSON of the request (prompt, uc = negative prompt, steps, scale, seed, width, height, sampler
"k_euler_ancestral" & co, noise_schedule "native" | "karras" | "exponential" | "polyexponential", n_samples,
strength / noise, sm / sm_dyn, cfg_rescale, ... and for V4 v4_prompt / v4_negative_prompt with a
base caption and character captions). The same keys also come hidden in the pixels (stealth.py).
"""
from __future__ import annotations

import re

from pipelines.metadata import names
from pipelines.metadata.settings import Collector, PngSettings, load_json

FIELDS = {"steps": "steps", "scale": "guidance_scale", "seed": "seed", "width": "width", "height": "height",
          "n_samples": "num_images"}
SOURCE_RE = re.compile(r"^(.*?)\s+([0-9A-Fa-f]{8})$")


def _caption(value) -> tuple[str | None, list]:
    caption = value.get("caption") if isinstance(value, dict) else None
    if not isinstance(caption, dict):
        return None, []
    return caption.get("base_caption"), [c.get("char_caption") for c in caption.get("char_captions") or []
                                         if isinstance(c, dict) and c.get("char_caption")]


def read_novelai(chunks: dict[str, str], image_size=None, chunk: str = "Comment") -> PngSettings:
    out = Collector("NovelAI", chunk)
    comment = chunks.get("Comment")
    data = comment if isinstance(comment, dict) else load_json(comment, "Comment", out) if comment else None
    data = data if isinstance(data, dict) else {}
    base, characters = _caption(data.get("v4_prompt"))
    negative_base, negative_characters = _caption(data.get("v4_negative_prompt"))
    out.set("prompt", base if base is not None else data.get("prompt", chunks.get("Description")), "prompt")
    out.set("negative_prompt", negative_base if negative_base is not None else data.get("uc", ""), "uc")
    out.keep("character prompts", characters)
    out.keep("character negative prompts", negative_characters)
    for key, field in FIELDS.items():
        out.set(field, data.get(key), key)
    if image_size:
        out.fields.setdefault("width", image_size[0])
        out.fields.setdefault("height", image_size[1])
    if data.get("sampler"):
        schedule = data.get("noise_schedule")
        written = str(data["sampler"])
        out.sampler(names.to_a1111(written, None if schedule in (None, "native") else schedule,
                                   unstated=names.PLAIN), written)
    source = SOURCE_RE.match(chunks.get("Source", "").strip())
    out.set("model", source.group(1) if source else chunks.get("Source") or None, "Source")
    if source:
        out.keep("Model hash", source.group(2))
    # "strength" / "noise" are written for text-to-image too, so they are shown, not read as img2img's strength.
    used = {*FIELDS, "prompt", "uc", "v4_prompt", "v4_negative_prompt", "sampler", "noise_schedule"}
    for key, value in data.items():
        if key not in used:
            out.keep(key, value)
    for key in ("Title", "Software", "Generation time", "Description"):
        if key != "Description" or chunks.get(key) != out.fields.get("prompt"):
            out.keep(key, chunks.get(key))
    return out.settings()

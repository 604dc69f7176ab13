"""Reading TensorArt images: `generation_data` JSON (prompt, negativePrompt, width, height, seed as a string,
steps, cfgScale, clipSkip, baseModel {modelFileName, hash, ...}, models, ...; sometimes padded with NUL bytes)
next to the ComfyUI `prompt` graph that ran it, which is where the sampler and scheduler are.
"""
from __future__ import annotations

from pipelines.metadata.comfyui import fill_from_graph
from pipelines.metadata.settings import Collector, PngSettings, load_json

FIELDS = {"prompt": "prompt", "negativePrompt": "negative_prompt", "width": "width", "height": "height",
          "seed": "seed", "steps": "steps", "cfgScale": "guidance_scale", "clipSkip": "clip_skip"}


def read_tensorart(chunks: dict[str, str], image_size=None) -> PngSettings:
    out = Collector("TensorArt", "generation_data")
    data = load_json(chunks["generation_data"], "generation_data", out)
    data = data if isinstance(data, dict) else {}
    for key, field in FIELDS.items():
        out.set(field, data.get(key), key)
    base = data.get("baseModel") if isinstance(data.get("baseModel"), dict) else {}
    out.set("model", base.get("modelFileName") or None, "baseModel")
    for key, value in base.items():
        if key != "modelFileName":
            out.keep(f"baseModel {key}", value)
    for key, value in data.items():
        if key not in FIELDS and key != "baseModel":
            out.keep(key, value)
    fill_from_graph(out, chunks, image_size)
    return out.settings()

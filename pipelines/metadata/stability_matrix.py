"""Reading Stability Matrix images: `parameters-json` (its GenerationParameters: PositivePrompt,
NegativePrompt, Steps, Sampler, CfgScale, Seed, Width, Height, ModelName, ModelHash, video settings ...),
`parameters` (the same as A1111 text) and `smproj` (the whole inference project, shown, not read).
Its sampler names are ComfyUI's display names with the scheduler appended ("Euler Ancestral Karras"); with
none appended it means ComfyUI's "normal" scheduler (Stability Matrix's own GetComfySamplers).
"""
from __future__ import annotations

from pipelines.metadata import names
from pipelines.metadata.a1111 import read_parameters
from pipelines.metadata.comfyui import fill_from_graph
from pipelines.metadata.settings import Collector, PngSettings, load_json

FIELDS = {"PositivePrompt": "prompt", "NegativePrompt": "negative_prompt", "Steps": "steps",
          "CfgScale": "guidance_scale", "Seed": "seed", "Width": "width", "Height": "height",
          "ModelName": "model"}
ZERO_DEFAULTS = ("FrameCount", "MotionBucketId", "VideoQuality", "Fps", "OutputFps", "MinCfg",
                 "AugmentationLevel", "Lossless")


def read_stability_matrix(chunks: dict[str, str], image_size=None) -> PngSettings:
    out = Collector("Stability Matrix", "parameters-json")
    data = load_json(chunks["parameters-json"], "parameters-json", out) if "parameters-json" in chunks else None
    if not isinstance(data, dict):
        if "parameters" in chunks:
            text = read_parameters(chunks["parameters"])
            return PngSettings(text.fields, text.unknown, "Stability Matrix", "parameters",
                               tuple(out.notes) + text.notes)
        out.note("only the inference project (smproj) is stored; its settings are not read")
        out.keep("smproj", f"{len(chunks.get('smproj', '')):,} characters")
        return out.settings()
    for key, field in FIELDS.items():
        out.set(field, data.get(key), key)
    if data.get("Sampler"):
        out.sampler(names.to_a1111(str(data["Sampler"]), unstated="Normal"), str(data["Sampler"]))
    for key, value in data.items():
        if key not in FIELDS and key != "Sampler" and not (key in ZERO_DEFAULTS and not value):
            out.keep(key, value)
    fill_from_graph(out, chunks, image_size)
    return out.settings()

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


def read_studio_request(text: str) -> PngSettings | None:
    out = Collector("Diffusion Studio", "studio_request")
    data = load_json(text, "studio_request", out)
    if not isinstance(data, dict):
        return None
    for key, value in data.items():
        if key == "loras" and isinstance(value, list):
            out.loras([tuple(pair) for pair in value if isinstance(pair, (list, tuple)) and len(pair) == 2])
        elif key in REQUEST_FIELDS and key != "adapters":
            out.fields[key] = value
        else:
            out.keep(key, value)
    if "schedule_type" not in data and isinstance(data.get("scheduler"), str):
        out.sampler(names.to_a1111(data["scheduler"], unstated=names.PLAIN), data["scheduler"])
    return out.settings()

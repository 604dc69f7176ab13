"""PNG metadata in the AUTOMATIC1111 `parameters` format, plus our exact request as JSON.

Written (one image, one request)::

    a red circle on a blue background
    Negative prompt: blurry
    Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1, Size: 128x128, Model: shapes

`read_png_info` reads ours, A1111's (old combined sampler names included) and InvokeAI's into a dict of
GenerationRequest field names, ready to send back to the form.
"""
from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from pipelines.requests import GenerationRequest, InvalidRequest
from pipelines.schedulers import a1111_sampler_fields, resolve_scheduler_name

PARAMETERS_KEY = "parameters"
REQUEST_KEY = "studio_request"
STUDIO_VERSION = "Diffusion Studio"
# The pattern A1111 itself uses to split the last line into "Key: value" pairs.
A1111_PARAM_RE = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
NEGATIVE_PREFIX = "Negative prompt:"
REQUEST_FIELDS = tuple(f.name for f in fields(GenerationRequest))


def quote(value: Any) -> str:
    text = str(value)
    if any(ch in text for ch in ",:\n") or text.startswith('"'):
        return json.dumps(text, ensure_ascii=False)
    return text


def unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        try:
            return str(json.loads(text))
        except ValueError:
            return text
    return text


def _number(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def _as_dict(request_like) -> dict:
    if isinstance(request_like, GenerationRequest):
        return request_like.to_json_dict()
    return dict(request_like)


def a1111_parameters(request_like, extra: dict[str, Any] | None = None) -> str:
    """The `parameters` text for one image (its concrete seed) of a request or a dict of its fields."""
    r = _as_dict(request_like)
    lines = [str(r.get("prompt", ""))]
    if r.get("negative_prompt"):
        lines.append(f"{NEGATIVE_PREFIX} {r['negative_prompt']}")
    params: dict[str, Any] = {"Steps": r.get("steps")}
    params.update(a1111_sampler_fields(str(r.get("scheduler", ""))))
    params["CFG scale"] = _number(r.get("guidance_scale", 0))
    params["Seed"] = r.get("seed")
    params["Size"] = f"{r.get('width')}x{r.get('height')}"
    params["Model"] = r.get("model")
    if r.get("loras"):
        params["Loras"] = ", ".join(f"{path}:{_number(weight)}" for path, weight in r["loras"])
    for k, adapter in enumerate(r.get("adapters") or ()):
        params[f"Adapter {k}"] = f"kind: {adapter['kind']}, weight: {_number(adapter['weight'])}, " \
                                 f"preprocess: {adapter.get('preprocess', False)}"
    if float(r.get("adapter_conditioning_factor", 1.0)) != 1.0:
        params["Adapter conditioning factor"] = _number(r["adapter_conditioning_factor"])
    if r.get("step_cache"):
        params["Step cache"] = int(r["step_cache"])
    params.update(extra or {})
    params["Version"] = STUDIO_VERSION
    lines.append(", ".join(f"{key}: {quote(value)}" for key, value in params.items() if value is not None))
    return "\n".join(lines)


def png_info(request: GenerationRequest, extra: dict[str, Any] | None = None) -> PngInfo:
    info = PngInfo()
    info.add_text(PARAMETERS_KEY, a1111_parameters(request, extra))
    info.add_text(REQUEST_KEY, json.dumps(request.to_json_dict(), ensure_ascii=False))
    return info


def split_parameters(text: str) -> tuple[str, str, dict[str, str]]:
    """(prompt, negative prompt, {key: unquoted value}) of an A1111 `parameters` text."""
    lines = text.strip().split("\n")
    params: dict[str, str] = {}
    if lines and len(A1111_PARAM_RE.findall(lines[-1])) >= 3:
        params = {key.strip(): unquote(value) for key, value in A1111_PARAM_RE.findall(lines.pop())}
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.strip().startswith(NEGATIVE_PREFIX):
            in_negative = True
            line = line.strip()[len(NEGATIVE_PREFIX):].strip()
        (negative if in_negative else prompt).append(line)
    return "\n".join(prompt).strip(), "\n".join(negative).strip(), params


def parse_parameters(text: str) -> dict[str, Any]:
    """A1111 `parameters` text -> GenerationRequest field values (only those the text states)."""
    prompt, negative, params = split_parameters(text)
    out: dict[str, Any] = {"prompt": prompt, "negative_prompt": negative}
    if "Steps" in params:
        out["steps"] = int(params["Steps"])
    if "Sampler" in params:
        out["scheduler"] = _scheduler(params["Sampler"], params.get("Schedule type"))
    if "CFG scale" in params:
        out["guidance_scale"] = float(params["CFG scale"])
    if "Seed" in params:
        out["seed"] = int(params["Seed"])
    size = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", params.get("Size", ""))
    if size:
        out["width"], out["height"] = int(size.group(1)), int(size.group(2))
    if params.get("Model"):
        out["model"] = params["Model"]
    if params.get("Loras"):
        pairs = [item.strip().rsplit(":", 1) for item in params["Loras"].split(",") if item.strip()]
        out["loras"] = [(path, float(weight)) for path, weight in pairs]
    if "Adapter conditioning factor" in params:
        out["adapter_conditioning_factor"] = float(params["Adapter conditioning factor"])
    if "Step cache" in params:
        out["step_cache"] = int(params["Step cache"])
    return out


def _scheduler(sampler: str, schedule_type: str | None) -> str:
    try:
        return resolve_scheduler_name(sampler, schedule_type)
    except InvalidRequest:  # a sampler we do not have: keep its name so the form can say so
        return f"{sampler} {schedule_type}" if schedule_type and schedule_type != "Automatic" else sampler


def _from_request_json(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    out = {k: v for k, v in data.items() if k in REQUEST_FIELDS and k != "adapters"}
    if "loras" in out:
        out["loras"] = [(str(p), float(w)) for p, w in out["loras"]]
    return out


def _from_invokeai(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    names = {"positive_prompt": "prompt", "negative_prompt": "negative_prompt", "steps": "steps",
             "cfg_scale": "guidance_scale", "seed": "seed", "width": "width", "height": "height"}
    out = {ours: data[theirs] for theirs, ours in names.items() if theirs in data}
    if "scheduler" in data:
        out["scheduler"] = _scheduler(str(data["scheduler"]), None)
    model = data.get("model")
    if isinstance(model, dict) and model.get("name"):
        out["model"] = model["name"]
    return out


def png_text_chunks(image_or_path) -> dict[str, str]:
    """All text chunks of a PNG (for showing them as they are)."""
    if isinstance(image_or_path, Image.Image):
        info = image_or_path.info
    else:
        with Image.open(Path(image_or_path)) as image:
            image.load()
            info = dict(image.info)
    return {k: v for k, v in info.items() if isinstance(v, str)}


def read_png_info(image_or_path) -> dict[str, Any]:
    """Generation settings stored in a PNG, as GenerationRequest field names; {} when it has none."""
    chunks = png_text_chunks(image_or_path)
    if REQUEST_KEY in chunks:
        parsed = _from_request_json(chunks[REQUEST_KEY])
        if parsed is not None:
            return parsed
    if PARAMETERS_KEY in chunks:
        return parse_parameters(chunks[PARAMETERS_KEY])
    if "invokeai_metadata" in chunks:
        return _from_invokeai(chunks["invokeai_metadata"]) or {}
    return {}

"""Widget values -> a frozen GenerationRequest, field by field, by name.

Widgets hand over loosely typed values (a Number gives 20.0 or None, a Textbox a string). Each value is
converted to the request field's type here; a value that does not convert raises InvalidRequest naming the
field, never a silent correction. Ranges that depend on the model (sizes, steps, ...) are the engine's
to check; `check_limits` applies them early when a `Limits` is at hand.
"""
from __future__ import annotations

import math
from typing import Any

from pipelines.loras import parse_lora_spec
from pipelines.requests import GenerationRequest, InvalidRequest

# The form fields of a text-to-image request, in the order the UI shows them (and the API takes them).
FORM_FIELDS = ("prompt", "negative_prompt", "model", "scheduler", "steps", "guidance_scale", "width",
               "height", "seed", "num_images")
INT_FIELDS = ("steps", "width", "height", "seed", "num_images", "step_cache")
FLOAT_FIELDS = ("guidance_scale",)
TEXT_FIELDS = ("prompt", "negative_prompt")
CHOICE_FIELDS = ("model", "scheduler")


def as_int(field: str, value: Any) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidRequest(field, "a whole number is required")
    if isinstance(value, bool):
        raise InvalidRequest(field, f"must be a whole number, got {value!r}")
    try:
        number = float(value) if isinstance(value, str) else value
        if isinstance(number, float) and not number.is_integer():
            raise ValueError
        return int(number)
    except (TypeError, ValueError, OverflowError):
        raise InvalidRequest(field, f"must be a whole number, got {value!r}") from None


def as_float(field: str, value: Any) -> float:
    if value is None or (isinstance(value, str) and not value.strip()) or isinstance(value, bool):
        raise InvalidRequest(field, "a number is required")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidRequest(field, f"must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InvalidRequest(field, f"must be a finite number, got {value!r}")
    return number


def as_text(field: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRequest(field, f"must be text, got {type(value).__name__}")
    return value


def as_choice(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(field, "choose one")
    return value.strip()


def lora_selection(names: Any, weight: Any) -> list[tuple[str, float]]:
    """The LoRA picker (the LoRAs chosen, one weight for each of them) -> the request's `loras`."""
    if names is None or names == "":
        return []
    names = [names] if isinstance(names, str) else list(names)
    if not names:
        return []
    weight = as_float("loras", weight)
    return [(as_choice("loras", name), weight) for name in names]


def lora_strings(values: Any) -> list[tuple[str, float]]:
    """The API's `loras`: "KEY_OR_PATH[:WEIGHT]" strings (weight 1 when left out) -> the request's `loras`."""
    if values is None or values == "":
        return []
    values = [values] if isinstance(values, str) else list(values)
    texts = [as_text("loras", value).strip() for value in values]
    if not all(texts):
        raise InvalidRequest("loras", "an entry is empty; write KEY_OR_PATH or KEY_OR_PATH:WEIGHT")
    return [parse_lora_spec(text) for text in texts]


def build_request(**values: Any) -> GenerationRequest:
    """A GenerationRequest from named widget values (FORM_FIELDS, plus `adapters` / `loras` passed through).

    With `lora_weight` (the LoRA picker), `loras` holds the names chosen and each gets that weight.
    Missing form fields take the request's defaults; an unknown name is an error, so a renamed widget
    cannot silently drop a setting.
    """
    known = set(FORM_FIELDS) | {"adapters", "loras", "lora_weight", "adapter_conditioning_factor", "step_cache"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise TypeError(f"build_request() got unknown fields: {', '.join(unknown)}")
    if "lora_weight" in values:
        values["loras"] = lora_selection(values.get("loras"), values.pop("lora_weight"))
    fields: dict[str, Any] = {}
    for name, value in values.items():
        if name in INT_FIELDS:
            fields[name] = as_int(name, value)
        elif name in FLOAT_FIELDS or name == "adapter_conditioning_factor":
            fields[name] = as_float(name, value)
        elif name in TEXT_FIELDS:
            fields[name] = as_text(name, value)
        elif name in CHOICE_FIELDS:
            fields[name] = as_choice(name, value)
        else:
            fields[name] = value
    if "prompt" not in fields:
        raise InvalidRequest("prompt", "is required")
    if fields.get("seed", -1) < -1:
        raise InvalidRequest("seed", f"must be -1 (random) or a seed >= 0, got {fields['seed']}")
    return GenerationRequest(**fields)


def parse_number_list(field: str, text: str, kind: type = int) -> list:
    """`"10, 20, 30"` -> [10, 20, 30] for the compare tab's axes; an empty text gives []."""
    convert = as_int if kind is int else as_float
    items = [item.strip() for item in (text or "").replace(";", ",").split(",")]
    return [convert(field, item) for item in items if item]

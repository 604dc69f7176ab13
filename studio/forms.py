"""Widget values -> a frozen GenerationRequest, field by field, by name.

Widgets hand over loosely typed values (a Number gives 20.0 or None, a Textbox a string). Each value is
converted to the request field's type here; a value that does not convert raises InvalidRequest naming the
field, never a silent correction. Ranges that depend on the model (sizes, steps, ...) are the engine's
to check; `check_limits` applies them early when a `Limits` is at hand.
"""
from __future__ import annotations

import math
import numbers
from typing import Any

from pipelines.loras import parse_lora_spec
from pipelines.requests import GenerationRequest, InvalidRequest, shown

# The form fields of a text-to-image request, in the order the UI shows them (and the API takes them).
FORM_FIELDS = ("prompt", "negative_prompt", "model", "scheduler", "schedule_type", "steps", "guidance_scale",
               "width", "height", "seed", "num_images")
# Beyond the API's form: the UI's batch count and seed variation (GenerationRequest fields too).
EXTRA_FIELDS = ("batch_count", "variation_seed", "variation_strength", "clip_skip", "step_cache")
INT_FIELDS = ("steps", "width", "height", "seed", "num_images", "batch_count", "variation_seed", "clip_skip",
              "mask_blur", "inpaint_padding", "outpaint_pixels", "hires_steps", "step_cache")
FLOAT_FIELDS = ("guidance_scale", "variation_strength", "denoising_strength", "hires_scale", "hires_denoising")
TEXT_FIELDS = ("prompt", "negative_prompt")
CHOICE_FIELDS = ("model", "scheduler", "schedule_type", "resize_mode", "inpaint_area", "masked_content",
                 "hires_upscaler")
# Image to image, inpainting and outpainting (pictures pass through as they are), and the hires fix, whose
# checkbox `hires_fix` (not a request field) leaves the request at no hires fix when it is off.
PICTURE_FIELDS = ("init_image", "mask")
IMAGE_MODE_FIELDS = ("denoising_strength", "resize_mode", "mask_blur", "inpaint_area", "inpaint_padding",
                     "masked_content", "outpaint_pixels", "outpaint_directions")
HIRES_FIELDS = ("hires_scale", "hires_steps", "hires_upscaler", "hires_denoising")


def as_int(field: str, value: Any) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidRequest(field, "a whole number is required")
    if isinstance(value, bool) or not isinstance(value, (str, numbers.Real)):
        raise InvalidRequest(field, f"must be a whole number, got {shown(value)}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)  # "20", and digits beyond a float's precision, exactly
        except ValueError:
            pass
    try:
        number = float(value)  # "20.0", 20.0; inf and nan are not whole numbers
    except (TypeError, ValueError, OverflowError):
        raise InvalidRequest(field, f"must be a whole number, got {shown(value)}") from None
    if not number.is_integer():
        raise InvalidRequest(field, f"must be a whole number, got {shown(value)}")
    return int(number)


def as_float(field: str, value: Any) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidRequest(field, "a number is required")
    if isinstance(value, bool) or not isinstance(value, (str, numbers.Real)):
        raise InvalidRequest(field, f"must be a number, got {shown(value)}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidRequest(field, f"must be a number, got {shown(value)}") from None
    if not math.isfinite(number):
        raise InvalidRequest(field, f"must be a finite number, got {shown(value)}")
    return number


def as_text(field: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRequest(field, f"must be text, got {type(value).__name__}")
    return value


def as_bool(field: str, value: Any) -> bool:
    """A checkbox: true or false, nothing else ("false" as text is not silently true)."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidRequest(field, f"must be true or false, got {shown(value)}")
    return value


def as_list(field: str, value: Any) -> list:
    """A multi-select value: a list (one text counts as a list of one); empty or None is []."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)):
        raise InvalidRequest(field, f"must be a list, got {shown(value)}")
    return list(value)


def as_choice(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(field, f"choose one, got {shown(value)}" if value not in (None, "") else "choose one")
    return value.strip()


def lora_selection(names: Any, weight: Any) -> list[tuple[str, float]]:
    """The LoRA picker (the LoRAs chosen, one weight for each of them) -> the request's `loras`."""
    names = as_list("loras", names)
    if not names:
        return []
    weight = as_float("loras", weight)
    return [(as_choice("loras", name), weight) for name in names]


def lora_strings(values: Any) -> list[tuple[str, float]]:
    """The API's `loras`: "KEY_OR_PATH[:WEIGHT]" strings (weight 1 when left out) -> the request's `loras`."""
    values = as_list("loras", values)
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
    known = set(FORM_FIELDS) | set(EXTRA_FIELDS) | {"adapters", "loras", "lora_weight", "adapter_conditioning_factor",
                                                    "hires_fix", *PICTURE_FIELDS, *IMAGE_MODE_FIELDS, *HIRES_FIELDS}
    unknown = sorted(set(values) - known)
    if unknown:
        raise TypeError(f"build_request() got unknown fields: {', '.join(unknown)}")
    if "lora_weight" in values:
        values["loras"] = lora_selection(values.get("loras"), values.pop("lora_weight"))
    if "hires_fix" in values and not values.pop("hires_fix"):
        for name in HIRES_FIELDS:
            values.pop(name, None)
    fields: dict[str, Any] = {}
    for name, value in values.items():
        if name in IMAGE_MODE_FIELDS and value is None:  # unset: the mode's default (pipelines.modes)
            fields[name] = None
        elif name == "outpaint_directions":
            fields[name] = directions(value)
        elif name in PICTURE_FIELDS:
            fields[name] = picture(name, value)
        elif name in INT_FIELDS:
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
    for seed in ("seed", "variation_seed"):
        if fields.get(seed, -1) < -1:
            raise InvalidRequest(seed, f"must be -1 (random) or a seed >= 0, got {fields[seed]}")
    return GenerationRequest(**fields)


def directions(value: Any) -> tuple[str, ...]:
    """The outpainting sides: a list (a CheckboxGroup) or "left, up" text."""
    if value is None or value == "":
        return ()
    items = value.replace(";", ",").split(",") if isinstance(value, str) else list(value)
    return tuple(as_text("outpaint_directions", item).strip() for item in items if str(item).strip())


def picture(field: str, value: Any):
    """A picture from a widget: a PIL image, or None when the widget is empty."""
    from PIL import Image

    if value is None or isinstance(value, Image.Image):
        return value
    raise InvalidRequest(field, f"must be a picture, got {type(value).__name__}")


def parse_number_list(field: str, text: str, kind: type = int) -> list:
    """`"10, 20, 30"` -> [10, 20, 30] for the compare tab's axes; an empty text gives []."""
    convert = as_int if kind is int else as_float
    items = [item.strip() for item in as_text(field, text).replace(";", ",").split(",")]
    return [convert(field, item) for item in items if item]

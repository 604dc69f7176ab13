"""Adapter widget values -> AdapterInput, by name. Used by the Adapters tab, its API endpoints and the CLI.

One condition slot in the UI is a handful of named values: the kind, where the picture comes from (a
sketchpad drawing or an upload), the preprocessor, its settings and the weight. Only the settings the
chosen preprocessor has are passed on; a bad value raises InvalidRequest naming it.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np
from PIL import Image

from pipelines.adapters.preprocess import PREPROCESSORS
from pipelines.requests import AdapterInput, InvalidRequest, shown
from studio.forms import as_bool, as_choice, as_float, as_text

SOURCES = ("Draw", "Upload")
# Slot widget name -> preprocessor option it sets (the names the preprocessors use).
OPTION_WIDGETS = {"low": "low", "high": "high", "threshold": "threshold", "thickness": "thickness",
                  "polarity": "polarity", "depth_model": "model", "cell": "cell"}
SLOT_FIELDS = ("kind", "source", "drawing", "upload", "preprocessor", "weight", *OPTION_WIDGETS)


def drawing_image(value: Any) -> Image.Image | None:
    """The picture of a sketchpad value ({"background", "layers", "composite"}), None when nothing is drawn."""
    if value is None:
        return None
    image = value.get("composite") if isinstance(value, dict) else value
    if image is None:
        return None
    if not isinstance(image, Image.Image):
        image = Image.fromarray(np.asarray(image))
    pixels = np.asarray(image.convert("RGBA"))
    if not (pixels[..., 3] > 0).any() or (pixels == pixels[0, 0]).all():
        return None  # an empty canvas: fully transparent, or one flat colour
    return image


def preprocessor_options(preprocessor: str, values: dict) -> dict:
    """The settings `preprocessor` takes, picked from the slot's option widgets (others are ignored:
    the UI shows only the chosen preprocessor's settings)."""
    if preprocessor not in PREPROCESSORS:
        raise InvalidRequest("adapters", f"preprocessor must be one of {list(PREPROCESSORS)}, got {preprocessor!r}")
    wanted = {option.name for option in PREPROCESSORS[preprocessor].options}
    return {option: values[widget] for widget, option in OPTION_WIDGETS.items()
            if option in wanted and values.get(widget) is not None}


def slot_input(values: dict) -> AdapterInput | None:
    """One condition slot's widget values -> AdapterInput; None when the slot holds no picture."""
    unknown = sorted(set(values) - set(SLOT_FIELDS))
    if unknown:
        raise TypeError(f"slot_input() got unknown fields: {', '.join(unknown)}")
    source = values.get("source") or "Upload"
    if source not in SOURCES:
        raise InvalidRequest("adapters", f"source must be one of {list(SOURCES)}, got {source!r}")
    image = drawing_image(values.get("drawing")) if source == "Draw" else values.get("upload")
    if image is None:
        return None
    kind = values.get("kind")
    if not isinstance(kind, str) or not kind:
        raise InvalidRequest("adapters", "choose the kind of condition (sketch, edge, depth, ...)")
    preprocessor = values.get("preprocessor") or "as-is"
    options = preprocessor_options(preprocessor, values)
    options["preprocessor"] = preprocessor
    return AdapterInput(kind=kind, image=image, weight=_weight(kind, values.get("weight", 1.0)),
                        preprocess=preprocessor != "as-is", options=options)


def _weight(kind: str, value: Any) -> float:
    try:
        return as_float("adapters", value)
    except InvalidRequest:
        raise InvalidRequest("adapters", f"the {kind!r} adapter weight must be a number, got {value!r}") from None


def api_input(kind: str, image, weight: Any = 1.0, preprocess: bool = False, preprocessor: str = "",
              options: str | dict | None = None) -> AdapterInput | None:
    """An API caller's condition: an image with plain settings; `options` as a dict or JSON text."""
    if image is None or (isinstance(image, str) and not image):
        return None
    kind = as_choice("adapters", kind)
    settings = parse_options(options)
    preprocessor = as_text("adapters", preprocessor).strip()
    if preprocessor:
        settings["preprocessor"] = preprocessor
    return AdapterInput(kind=kind, image=image, weight=_weight(kind, weight),
                        preprocess=as_bool("adapters", preprocess) or preprocessor not in ("", "as-is"),
                        options=settings)


def parse_options(options: str | dict | None) -> dict:
    if options is None or options == "":
        return {}
    if isinstance(options, dict):
        return dict(options)
    if not isinstance(options, str):
        raise InvalidRequest("adapters", f"options must be a JSON object such as {{\"low\": 50}}, got {shown(options)}")
    try:
        parsed = json.loads(options)
    except (ValueError, RecursionError) as error:  # bad JSON, a 5000-digit number, "[[[[..." past the stack
        raise InvalidRequest("adapters", f"options must be a JSON object such as {{\"low\": 50}}: {error}") from None
    if not isinstance(parsed, dict):
        raise InvalidRequest("adapters", f"options must be a JSON object such as {{\"low\": 50}}, got {shown(options)}")
    return parsed

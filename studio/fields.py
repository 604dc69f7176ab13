"""Number inputs whose typed values reach the server as typed, so an out-of-range or non-whole value is
refused with an error naming the field instead of being changed without a word.

Gradio's slider clamps a typed value when its number box loses focus, and its server side raises an error
that names no field. A field slider is Gradio's own slider marked `studio-field` (studio.js keeps its
typed value from being clamped) whose value is handed to the handler unchanged; studio.forms and the engine
then check it like any other request field. (It is a gr.Slider with its own `preprocess`, not a subclass:
Gradio writes a .pyi stub beside the module of every component class it sees defined.)
"""
from __future__ import annotations

import types

import gradio as gr

FIELD_CLASS = "studio-field"


def _as_typed(self, payload):
    return payload  # unchecked and unrounded: studio.forms names the field when it is out of range


def field_slider(minimum: float, maximum: float, *, elem_classes: list[str] | str | None = None,
                 **options) -> gr.Slider:
    """A slider from `minimum` to `maximum` (gr.Slider's other keyword arguments) whose typed value, in range
    or not, whole or not, reaches the handler as typed."""
    classes = [elem_classes] if isinstance(elem_classes, str) else list(elem_classes or [])
    slider = gr.Slider(minimum=minimum, maximum=maximum, elem_classes=[*classes, FIELD_CLASS], **options)
    slider.preprocess = types.MethodType(_as_typed, slider)
    return slider


def is_field_slider(component) -> bool:
    return isinstance(component, gr.Slider) and FIELD_CLASS in (component.elem_classes or [])


def seed_number(label: str = "Seed", **options) -> gr.Number:
    """A seed box that passes 3.5 on as 3.5 (precision=0 would round it to 4), for studio.forms to refuse."""
    return gr.Number(value=-1, precision=None, step=1, label=label, **options)

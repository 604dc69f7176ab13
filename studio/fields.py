"""Number inputs whose typed values reach the server as typed, so an out-of-range or non-whole value is
refused with an error naming the field instead of being changed without a word.

Gradio's slider clamps a typed value when its number box loses focus, and its server side raises an error
that names no field. A FieldSlider is Gradio's own slider in the browser, marked `studio-field` (studio.js
keeps its typed value from being clamped), whose value is handed to the handler unchanged; studio.forms and
the engine then check it like any other request field.
"""
from __future__ import annotations

import gradio as gr
import gradio.component_meta

FIELD_CLASS = "studio-field"

# Gradio writes a .pyi stub beside the module of every component class it sees defined (for editors); a
# class of ours must not write into the source tree when imported. (It must be a class: Gradio rebuilds a
# session's component from its class when an update changes it, so a per-instance override would be lost.)
_write_stub = gradio.component_meta.create_or_modify_pyi
gradio.component_meta.create_or_modify_pyi = lambda *args, **kwargs: None
try:
    class FieldSlider(gr.Slider):
        """gr.Slider, its value handed over as typed. Make one with `field_slider`."""

        def get_block_name(self) -> str:
            return "slider"  # the browser side is Gradio's own slider

        def preprocess(self, payload):
            return payload  # unchecked and unrounded: studio.forms names the field when it is out of range
finally:
    gradio.component_meta.create_or_modify_pyi = _write_stub


def field_slider(minimum: float, maximum: float, *, elem_classes: list[str] | str | None = None,
                 **options) -> FieldSlider:
    """A FieldSlider from `minimum` to `maximum`, with gr.Slider's other keyword arguments (by keyword:
    Gradio reads a component's settings by the names of its __init__'s parameters)."""
    classes = [elem_classes] if isinstance(elem_classes, str) else list(elem_classes or [])
    return FieldSlider(minimum=minimum, maximum=maximum, elem_classes=[*classes, FIELD_CLASS], **options)


def is_field_slider(component) -> bool:
    return isinstance(component, FieldSlider)


def seed_number(label: str = "Seed", **options) -> gr.Number:
    """A seed box that passes 3.5 on as 3.5 (precision=0 would round it to 4), for studio.forms to refuse."""
    return gr.Number(value=-1, precision=None, step=1, label=label, **options)

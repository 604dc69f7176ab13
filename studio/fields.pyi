"""Number inputs whose typed values reach the server as typed, so an out-of-range or non-whole value is
refused with an error naming the field instead of being changed without a word.

Gradio's slider clamps a typed value when its number box loses focus, and its server side raises an error
that names no field. A FieldSlider is the same slider in the browser (class `studio-field`: studio.js keeps
its typed value from being clamped) whose value is handed to the handler unchanged; studio.forms and the
engine then check it like any other request field.
"""
from __future__ import annotations

import gradio as gr

FIELD_CLASS = "studio-field"

from gradio.events import Dependency

class field_slider(gr.Slider):
    """gr.Slider, its value handed over as typed. Make one with `field_slider` (which marks it for studio.js)."""

    def get_block_name(self) -> str:
        return "slider"  # the browser side is Gradio's own slider

    def preprocess(self, payload):
        return payload
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component  # unchecked and unrounded: studio.forms names the field when it is out of range


def seed_number(label: str = "Seed", **options) -> gr.Number:
    """A seed box that passes 3.5 on as 3.5 (precision=0 would round it to 4), for studio.forms to refuse."""
    return gr.Number(value=-1, precision=None, step=1, label=label, **options)
class FieldSlider(gr.Slider):
    """gr.Slider, its value handed over as typed. Make one with `field_slider` (which marks it for studio.js)."""

    def get_block_name(self) -> str:
        return "slider"  # the browser side is Gradio's own slider

    def preprocess(self, payload):
        return payload
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component

    
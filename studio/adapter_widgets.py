"""The widgets of one adapter condition slot (draw or upload, kind, preprocessor and its settings, weight)
and the updates that keep them consistent. Values leave a slot by name (see studio.adapter_form)."""
from __future__ import annotations

import gradio as gr

from studio.uploads import checked_image

from pipelines.adapters import kinds_for, preprocessors_for
from pipelines.adapters.preprocess import DEFAULT_PREPROCESSOR, PREPROCESSORS, WEIGHT_RANGE
from studio.adapter_form import OPTION_WIDGETS, SOURCES
from studio.fields import field_slider

CANVAS_SIZE = (512, 512)  # drawn large, brought to the generation size like any other picture
BRUSH_SIZE = 12  # about 3 pixels once a 512 canvas is brought to 128: the width the shapes adapters learned


def _option_default(preprocessor: str, option: str):
    return next(o.default for o in PREPROCESSORS[preprocessor].options if o.name == option)


def preprocessor_choices(kind: str) -> list[tuple[str, str]]:
    return [(PREPROCESSORS[name].label, name) for name in preprocessors_for(kind)]


def default_preprocessor(kind: str, source: str) -> str:
    """A drawing is already a map; an upload is taken to be a photo, run through the kind's extractor."""
    return "as-is" if source == "Draw" else DEFAULT_PREPROCESSOR.get(kind, "as-is")


def build_slot(index: int, family: str) -> dict[str, gr.components.Component]:
    """The widgets of condition `index` (1-based), named as studio.adapter_form.SLOT_FIELDS, plus the
    map preview ("preview_button", "preview", "note")."""
    kinds = kinds_for(family) or ["sketch"]
    kind_value = kinds[min(index - 1, len(kinds) - 1)]
    widgets: dict[str, gr.components.Component] = {}
    with gr.Row(equal_height=True):
        widgets["kind"] = gr.Dropdown(kinds, value=kind_value, label=f"Condition {index}: kind", scale=2)
        widgets["source"] = gr.Radio(list(SOURCES), value="Draw", label="Picture", scale=2)
        widgets["weight"] = field_slider(WEIGHT_RANGE[0], WEIGHT_RANGE[1], value=1.0, step=0.05, label="Weight",
                                         scale=2)
    widgets["drawing"] = gr.Sketchpad(type="pil", image_mode="RGBA", canvas_size=CANVAS_SIZE,
                                      brush=gr.Brush(colors=["#000000", "#404040"], default_color="#000000",
                                                     default_size=BRUSH_SIZE, color_mode="fixed"),
                                      label="Draw dark strokes on white", format="png", height=360)
    widgets["upload"] = checked_image(type="pil", label="Upload a photo or a condition map", format="png",
                                 height=360, visible=False, sources=["upload", "clipboard"])
    with gr.Row(equal_height=True):
        widgets["preprocessor"] = gr.Dropdown(preprocessor_choices(kind_value), value="as-is",
                                              label="Preprocessor", scale=3)
        widgets["preview_button"] = gr.Button("Show condition map", scale=1)
    with gr.Row():
        widgets["low"] = gr.Slider(0, 255, value=100, step=1, label="Canny low threshold", visible=False)
        widgets["high"] = gr.Slider(0, 255, value=200, step=1, label="Canny high threshold", visible=False)
        widgets["threshold"] = gr.Slider(0.0, 1.0, value=0.15, step=0.01, label="Line threshold", visible=False)
        widgets["thickness"] = gr.Slider(1, 7, value=1, step=1, label="Line thickness", visible=False)
        widgets["cell"] = gr.Slider(4, 256, value=64, step=4, label="Colour cell (px)", visible=False)
        widgets["polarity"] = gr.Radio(["auto", "keep", "invert"], value="auto", label="Stroke polarity",
                                       info="auto: dark strokes on light paper become white on black")
        widgets["depth_model"] = gr.Textbox(label="Depth model (folder or cached hub id; empty = first found)",
                                            visible=False)
    widgets["preview"] = gr.Image(label=f"Condition map {index}", format="png", interactive=False, height=256)
    widgets["note"] = gr.Markdown(visible=False)
    _wire(widgets)
    return widgets


def option_visibility(preprocessor: str) -> dict[str, bool]:
    """Which option widgets the chosen preprocessor uses."""
    wanted = {option.name for option in PREPROCESSORS.get(preprocessor, PREPROCESSORS["as-is"]).options}
    return {widget: option in wanted for widget, option in OPTION_WIDGETS.items()}


def _wire(widgets: dict) -> None:
    options = [widgets[name] for name in OPTION_WIDGETS]

    def on_preprocessor(preprocessor):
        shown = option_visibility(preprocessor)
        return [gr.update(visible=shown[name]) for name in OPTION_WIDGETS]

    def on_kind_or_source(kind, source):
        chosen = default_preprocessor(kind, source)
        return (gr.Dropdown(choices=preprocessor_choices(kind), value=chosen),
                gr.Sketchpad(visible=source == "Draw"), gr.Image(visible=source != "Draw"))

    widgets["preprocessor"].change(on_preprocessor, inputs=widgets["preprocessor"], outputs=options, queue=False,
                                   api_visibility="private")
    for trigger in (widgets["kind"].change, widgets["source"].change):
        trigger(on_kind_or_source, inputs=[widgets["kind"], widgets["source"]],
                outputs=[widgets["preprocessor"], widgets["drawing"], widgets["upload"]], queue=False,
                api_visibility="private")


def kind_updates(family: str, current: str) -> gr.Dropdown:
    """The kind dropdown for a newly chosen model family, keeping the current kind when it is offered."""
    kinds = kinds_for(family)
    if not kinds:
        return gr.Dropdown(choices=[], value=None, info=f"{family} models have no T2I-Adapters")
    return gr.Dropdown(choices=kinds, value=current if current in kinds else kinds[0], info=None)

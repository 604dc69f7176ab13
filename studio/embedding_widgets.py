"""Textual-inversion embeddings in a form: pickers that add an embedding's name to the prompt or the negative
prompt (a prompt uses an embedding by naming it), listing those that fit the chosen model."""
from __future__ import annotations

import gradio as gr

from pipelines.requests import InvalidRequest


def embedding_choices(registry, model: str) -> list[str] | None:
    """Names of the embeddings in `models/embeddings/` that fit the model's text encoders; None for a model
    that cannot be looked up (a half-typed path)."""
    try:
        family = registry.model_info(model).family
    except InvalidRequest:
        return None
    return registry.embedding_names(family)


def _picker(label: str, choices: list[str]) -> gr.Dropdown:
    return gr.Dropdown(choices=choices, value=None, label=label, filterable=True, scale=1,
                       info="adds its name; files in models/embeddings/ (↻ rescans)")


def embedding_pickers(registry, model: str) -> tuple[gr.Dropdown, gr.Dropdown]:
    """Two pickers in a row: one adds to the prompt, one to the negative prompt."""
    choices = embedding_choices(registry, model) or []
    with gr.Row(equal_height=True):
        return _picker("Embedding → prompt", choices), _picker("Embedding → negative prompt", choices)


def appended(text: str | None, name: str) -> str:
    text = text or ""
    return f"{text}{'' if not text or text[-1].isspace() else ' '}{name}"


def wire_embedding_pickers(registry, pickers: tuple[gr.Dropdown, gr.Dropdown], targets: tuple[gr.Textbox, gr.Textbox],
                           model: gr.Dropdown, refresh_button: gr.Button) -> None:
    """Choosing a name appends it to its prompt box (the picker then clears); the list follows the model and
    the ↻ button."""
    for picker, target in zip(pickers, targets):
        def add(text, name):
            if not name:
                return gr.skip(), gr.skip()
            return appended(text, name), gr.Dropdown(value=None)

        picker.input(add, inputs=[target, picker], outputs=[target, picker], queue=False, api_visibility="private")

    def relist(chosen: str, rescan: bool = False):
        if rescan:
            registry.embeddings.rescan()
        choices = embedding_choices(registry, chosen)
        if choices is None:
            return gr.skip(), gr.skip()
        return gr.Dropdown(choices=choices, value=None), gr.Dropdown(choices=choices, value=None)

    model.change(relist, inputs=model, outputs=list(pickers), queue=False, api_visibility="private")
    refresh_button.click(lambda chosen: relist(chosen, rescan=True), inputs=model, outputs=list(pickers),
                         queue=False, api_visibility="private")

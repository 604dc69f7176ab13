"""Send-to buttons: any result (a picture and its settings) goes to any other tab in one click.

A tab that can take a result registers a Receiver in `Shared` (what it fills, from a payload); a tab that
shows results calls `send_to_buttons` under them, with a gr.State holding the chosen result's payload
`{"image": path or PIL image, "settings": {GenerationRequest field: value}}`. Once every tab is built,
`wire_send_to` puts a "Send to X" button for each receiver (but the tab's own) into every such row, so a
new tab plugs in with one call of each.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import gradio as gr


@dataclass
class Receiver:
    tab: str  # the tab id (studio.ui.tab_id)
    title: str  # "Send to <title>"
    outputs: list  # the components `fill` updates
    fill: Callable[..., dict]  # fill(payload, *values of `inputs`) -> {component: value}
    inputs: list = field(default_factory=list)  # current values `fill` needs (e.g. a file list to extend)


@dataclass
class _Row:
    row: gr.Row
    source: str
    payload: gr.State


def register_receiver(shared, receiver: Receiver) -> None:
    shared.receivers[receiver.tab] = receiver


def send_to_buttons(shared, source: str, payload: gr.State) -> gr.Row:
    """A row (filled by wire_send_to) of Send-to buttons for the result held in `payload`."""
    row = gr.Row(elem_classes="studio-send-to")
    shared.send_rows.append(_Row(row, source, payload))
    return row


def _sender(shared, receiver: Receiver):
    def send(payload, *values):
        if not payload or not (payload.get("image") is not None or payload.get("settings")):
            raise gr.Error("Nothing to send yet: make or pick an image first.", title="Nothing to send",
                           print_exception=False)
        updates = receiver.fill(payload, *values)
        return {**updates, shared.tabs: gr.Tabs(selected=receiver.tab)}

    send.__name__ = f"send_to_{receiver.tab}"
    return send


def wire_send_to(shared) -> None:
    """Fill every Send-to row with a button per receiver; call once, after every tab is built."""
    for entry in shared.send_rows:
        with entry.row:
            for receiver in shared.receivers.values():
                if receiver.tab == entry.source:
                    continue
                button = gr.Button(f"Send to {receiver.title}", size="sm", min_width=80,
                                   elem_classes=f"studio-send-{receiver.tab}")
                button.click(_sender(shared, receiver), inputs=[entry.payload, *receiver.inputs],
                             outputs=[*receiver.outputs, shared.tabs], api_visibility="private")


def gallery_sender(shared, source: str, gallery: gr.Gallery) -> gr.State:
    """Send-to buttons for a results gallery of saved PNGs: the chosen entry (the first until one is
    clicked), with the settings read back from its file as PNG Info reads them, so what is sent is what ran."""
    payload = gr.State(None)

    def entry_payload(items, index: int):
        from pipelines.metadata import read_settings

        if not items:
            return None
        entry = items[min(index, len(items) - 1)]
        path = entry[0] if isinstance(entry, (list, tuple)) else entry
        path = path.get("path") if isinstance(path, dict) else getattr(path, "path", path)
        return {"image": path, "settings": read_settings(path).fields} if path else None

    def chosen(items, event: gr.SelectData):
        return entry_payload(items, event.index)

    gallery.change(lambda items: entry_payload(items, 0), inputs=gallery, outputs=payload, queue=False,
                   api_visibility="private")
    gallery.select(chosen, inputs=gallery, outputs=payload, queue=False, api_visibility="private")
    send_to_buttons(shared, source, payload)
    return payload


def picture_of(payload: dict):
    """The sent picture as a PIL image (it may come as a saved file's path)."""
    from PIL import Image

    picture = (payload or {}).get("image")
    if picture is None or isinstance(picture, Image.Image):
        return picture
    with Image.open(picture) as image:
        image.load()
        return image.copy()


def apply_settings(registry, form: dict, settings: dict) -> dict:
    """The form's updates from sent settings (PNG Info's rules: local model names, samplers, LoRAs, warnings
    about what the form cannot take), leaving out settings that are at their defaults."""
    from dataclasses import fields

    from pipelines.requests import GenerationRequest
    from studio.tabs.png_info import form_updates

    defaults = {f.name: f.default for f in fields(GenerationRequest)}
    kept = {k: v for k, v in settings.items()
            if k in form or k == "loras" or k not in defaults or v != defaults[k] and v != []}
    return form_updates(registry, form, kept)

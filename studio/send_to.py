"""Send to: a result's picture and its settings (or what PNG Info read) into another tab, as A1111's buttons do.

Each receiving tab registers a `Receiver`: the components it fills and `receive(picture, settings)`, which
returns their updates. Each place that sends (a results gallery, PNG Info) registers its buttons; `wire`
connects every button to its tab once all tabs are built (studio.ui.build_demo). A gallery's picture is the
saved PNG, whose embedded settings are read back as PNG Info reads them, so what is sent is what ran.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import gradio as gr
from PIL import Image

TARGETS = {"txt2img": "Text to Image", "img2img": "Image to Image", "inpaint": "Inpaint", "adapters": "Adapters"}
PICTURE_FIELDS = ("init_image", "mask")


@dataclass
class Receiver:
    tab: str
    outputs: list
    receive: Callable[[Image.Image | None, dict], dict]  # -> {component: update}


@dataclass
class Sender:
    buttons: dict[str, gr.Button]  # target tab -> its button
    inputs: list
    pick: Callable[..., tuple[Image.Image | None, dict]]


@dataclass
class SendTo:
    """The receivers and senders of one demo (kept on studio.ui.Shared as `sending`)."""

    receivers: dict[str, Receiver] = field(default_factory=dict)
    senders: list[Sender] = field(default_factory=list)


def _hub(shared) -> SendTo:
    return shared.sending


def register_receiver(shared, tab: str, outputs: list, receive) -> None:
    _hub(shared).receivers[tab] = Receiver(tab, list(outputs), receive)


def settings_of(request) -> dict:
    """A request's settings as PNG Info would give them: JSON values, no pictures."""
    return {k: v for k, v in request.to_json_dict().items() if k not in PICTURE_FIELDS and k != "adapters"}


def _picture_at(path) -> Image.Image | None:
    if not path:
        return None
    with Image.open(path) as image:
        image.load()
        return image.copy()


def gallery_send_buttons(shared, source: str, gallery: gr.Gallery) -> None:
    """Buttons under a results gallery sending the chosen image (the first until one is clicked)."""
    selected = gr.State(0)
    with gr.Row():
        buttons = {tab: gr.Button(f"Send to {label}", size="sm") for tab, label in TARGETS.items() if tab != source}

    def remember(event: gr.SelectData):
        return event.index

    gallery.select(remember, outputs=selected, queue=False, api_visibility="private")

    def pick(items, index):
        from pipelines.metadata import read_settings

        if not items:
            raise gr.Error("Generate a picture first.")
        entry = items[min(int(index or 0), len(items) - 1)]
        path = entry[0] if isinstance(entry, (list, tuple)) else entry
        path = path.get("path") if isinstance(path, dict) else path
        return _picture_at(path), read_settings(path).fields

    _hub(shared).senders.append(Sender(buttons, [gallery, selected], pick))


def picture_send_buttons(shared, buttons: dict[str, gr.Button], picture: gr.Image, settings: gr.JSON) -> None:
    """PNG Info: the dropped file's picture (a filepath) and the settings read from it."""
    def pick(path, found):
        if not found:
            raise gr.Error("Load an image with generation parameters first.")
        return _picture_at(path), found

    _hub(shared).senders.append(Sender(buttons, [picture, settings], pick))


def wire(shared, registry) -> None:
    """Connect every registered button to its tab (the txt2img form receives settings by default)."""
    hub = _hub(shared)
    if "txt2img" not in hub.receivers and getattr(shared, "txt2img_form", None):
        from studio.tabs.png_info import form_updates

        form = shared.txt2img_form
        register_receiver(shared, "txt2img", form.values(), lambda picture, settings: form_updates(registry, form,
                                                                                                   settings))
    for sender in hub.senders:
        for tab, button in sender.buttons.items():
            receiver = hub.receivers.get(tab)
            if receiver is None:
                button.visible = False
                continue

            def send(*values, sender=sender, receiver=receiver):
                picture, settings = sender.pick(*values)
                updates = receiver.receive(picture, dict(settings or {}))
                return {**updates, shared.tabs: gr.Tabs(selected=receiver.tab)}

            button.click(send, inputs=sender.inputs, outputs=[*receiver.outputs, shared.tabs],
                         api_visibility="private")


def apply_settings(registry, form: dict, settings: dict) -> dict:
    """The form's updates from settings (PNG Info's rules: local model names, samplers, LoRAs, warnings about
    what the form cannot take, leaving out settings at their defaults)."""
    from dataclasses import fields

    from pipelines.requests import GenerationRequest
    from studio.tabs.png_info import form_updates

    defaults = {f.name: f.default for f in fields(GenerationRequest)}
    kept = {k: v for k, v in settings.items()
            if k in form or k == "loras" or k not in defaults or v != defaults[k] and v != []}
    return form_updates(registry, form, kept)

"""PNG Info: read the settings stored in a PNG (ours, AUTOMATIC1111's, InvokeAI's) and reuse them."""
from __future__ import annotations

import gradio as gr
from PIL import UnidentifiedImageError

from pipelines import scheduler_names
from pipelines.metadata import PARAMETERS_KEY, png_text_chunks, read_png_info
from pipelines.requests import InvalidRequest
from studio.send_to import Receiver, register_receiver, send_to_buttons
from studio.widgets import user_error

TITLE = "PNG Info"
TAB = "png_info"
NOTHING_FOUND = "No generation parameters found in this image."


def read_image_info(image: str | None) -> tuple[str, dict]:
    """(the parameters text as stored, the settings as GenerationRequest field names) of a PNG file."""
    if not image:
        return "", {}
    try:
        chunks = png_text_chunks(image)
        settings = read_png_info(image)
    except (UnidentifiedImageError, OSError) as error:
        raise user_error(f"Could not read this file as an image: {error}", title="Cannot read the image") from None
    except (ValueError, InvalidRequest) as error:  # a parameters text that does not parse
        raise user_error(f"The image's parameters could not be read: {error}", title="Cannot read the image") from None
    text = chunks.get(PARAMETERS_KEY) or "\n\n".join(f"{key}:\n{value}" for key, value in chunks.items())
    return text or NOTHING_FOUND, settings


def form_updates(registry, form: dict, settings: dict) -> dict:
    """Values for the txt2img form from PNG settings; what this studio cannot use is skipped, with a warning."""
    settings = dict(settings or {})
    skipped = []
    model = settings.get("model")
    if model is not None:
        try:
            registry.model_info(model)
        except InvalidRequest:
            skipped.append(f"model {model!r} is not on this machine")
            settings.pop("model")
    scheduler = settings.get("scheduler")
    if scheduler is not None and scheduler not in scheduler_names():
        skipped.append(f"sampler {scheduler!r} is not available")
        settings.pop("scheduler")
    loras = settings.pop("loras", None) or []
    updates = {}
    if "loras" in form:  # the LoRA picker: the PNG's LoRAs (none clears it), one weight for all of them
        updates[form["loras"]] = [ref for ref, _ in loras]
        if loras:
            updates[form["lora_weight"]] = loras[0][1]
        if len({weight for _, weight in loras}) > 1:
            gr.Warning(f"The image used several LoRA weights; the form has one, set to {loras[0][1]:g}.")
    if skipped:
        gr.Warning("Kept the current " + " and ".join(s.split(" ", 1)[0] for s in skipped) + ": "
                   + "; ".join(skipped) + ".")
    updates.update({form[name]: value for name, value in settings.items() if name in form})
    return updates


def build(registry, shared) -> None:
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            image = gr.Image(label="Drop a PNG here", type="filepath", image_mode=None, format="png",
                             sources=["upload", "clipboard"], height=420)
        with gr.Column(scale=1):
            parameters = gr.Textbox(label="Parameters", lines=6, interactive=False, buttons=["copy"],
                                    elem_classes="studio-parameters")
            settings = gr.JSON(label="Settings", open=True)
            payload = gr.State(None)
            send_to_buttons(shared, TAB, payload)

    def png_info(image):
        """The parameters text stored in a PNG and the settings it describes (request field names)."""
        return read_image_info(image)

    image.change(png_info, inputs_kwargs={"image": image}, outputs=[parameters, settings], api_name="png_info")
    settings.change(lambda path, found: {"image": path, "settings": found} if path else None,
                    inputs=[image, settings], outputs=payload, queue=False, api_visibility="private")
    register_receiver(shared, Receiver(TAB, TITLE, [image], lambda sent: {image: sent.get("image")}))

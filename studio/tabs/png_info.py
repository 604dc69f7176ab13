"""PNG Info: read the settings stored in a PNG (ours, AUTOMATIC1111's, InvokeAI's) and reuse them."""
from __future__ import annotations

import gradio as gr
from PIL import UnidentifiedImageError

from pipelines import scheduler_names
from pipelines.metadata import PARAMETERS_KEY, png_text_chunks, read_png_info
from pipelines.requests import InvalidRequest
from pipelines.untrusted_images import open_untrusted
from studio.uploads import upload_path

TITLE = "PNG Info"
NOTHING_FOUND = "No generation parameters found in this image."


def read_image_info(image: str | None) -> tuple[str, dict]:
    """(the parameters text as stored, the settings as GenerationRequest field names) of a PNG file."""
    if not image:
        return "", {}
    try:
        open_untrusted(image, "image", load=False).close()  # its size is checked before any decoding
        chunks = png_text_chunks(image)
        settings = read_png_info(image)
    except (UnidentifiedImageError, OSError) as error:
        raise gr.Error(f"Could not read this file as an image: {error}") from None
    except InvalidRequest as error:
        raise gr.Error(str(error), title="Invalid upload") from None
    except ValueError as error:  # a parameters text that does not parse
        raise gr.Error(f"The image's parameters could not be read: {error}") from None
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
            parameters = gr.Textbox(label="Parameters", lines=6, interactive=False, buttons=["copy"])
            settings = gr.JSON(label="Settings", open=True)
            send = gr.Button("Send to Text to Image", variant="primary")

    def png_info(image):
        """The parameters text stored in a PNG and the settings it describes (request field names)."""
        try:
            path = upload_path("image", image)  # the upload record as sent (preprocess=False)
        except InvalidRequest as error:
            raise gr.Error(str(error), title="Invalid upload") from None
        return read_image_info(path)

    # preprocess=False: Gradio would decode the picture before the handler could check its size
    image.change(png_info, inputs_kwargs={"image": image}, outputs=[parameters, settings], api_name="png_info",
                 preprocess=False)

    form = shared.txt2img_form

    def send_to_txt2img(settings):
        if not settings:
            raise gr.Error("Load a PNG with generation parameters first.")
        return {**form_updates(registry, form, settings), shared.tabs: gr.Tabs(selected="txt2img")}

    send.click(send_to_txt2img, inputs=settings, outputs=[*form.values(), shared.tabs],
               api_visibility="private")

"""PNG Info: read the settings stored in an image by this or any common studio, and reuse them.

Shows the raw text, the studio it came from, the settings as request fields and what the file states that
no field holds; the Send-to buttons fill another tab's form. The `/png_info` API returns (raw text, settings).
"""
from __future__ import annotations

from pathlib import PurePosixPath, PureWindowsPath

import gradio as gr
from PIL import UnidentifiedImageError

from pipelines import canonical_sampler
from pipelines.metadata import PARAMETERS_KEY, png_text_chunks, read_settings
from pipelines.requests import InvalidRequest
from studio.send_to import Receiver, register_receiver, send_to_buttons
from studio.widgets import user_error
from pipelines.untrusted_images import open_untrusted
from studio.uploads import upload_path

TITLE = "PNG Info"
TAB = "png_info"
NOTHING_FOUND = "No generation parameters found in this image."
RAW_TEXT_LIMIT = 200_000  # characters of raw chunk text shown (a ComfyUI workflow can be very long)


def _upload(image) -> str | None:
    """The uploaded file's path, from the upload record as sent (the events run with preprocess=False)."""
    try:
        return upload_path("image", image) if image else None
    except InvalidRequest as error:
        raise user_error(str(error), title="Invalid upload") from None


def _read(image: str):
    try:
        open_untrusted(image, "image", load=False).close()  # its size is checked before any decoding
        return png_text_chunks(image), read_settings(image)
    except InvalidRequest as error:
        raise user_error(str(error), title="Invalid upload") from None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise user_error(f"Could not read this file as an image: {error}", title="Cannot read the image") from None


def raw_text(chunks: dict[str, str]) -> str:
    text = chunks.get(PARAMETERS_KEY) or "\n\n".join(f"{key}:\n{value}" for key, value in chunks.items())
    if len(text) > RAW_TEXT_LIMIT:
        text = text[:RAW_TEXT_LIMIT] + f"\n… ({len(text) - RAW_TEXT_LIMIT:,} more characters)"
    return text or NOTHING_FOUND


def read_image_info(image: str | None) -> tuple[str, dict]:
    """(the metadata text as stored, the settings as GenerationRequest field names) of an image file."""
    if not image:
        return "", {}
    chunks, settings = _read(image)
    return raw_text(chunks), settings.fields


def describe(settings) -> str:
    if not settings.source:
        lines = ["No studio's settings were recognised in this image."]
    else:
        lines = [f"**Recognised:** {settings.source} (from `{settings.chunk}`)"]
    lines += [f"- {note}" for note in settings.notes]
    return "\n".join(lines)


def form_values(settings: dict, form_names) -> tuple[dict, dict, list[str]]:
    """(values for the form's widgets by field name, settings the form has no widget for, messages).

    LoRAs go to the LoRA picker (names, one weight).
    """
    settings, names = dict(settings or {}), set(form_names)
    values, left_out, messages = {}, {}, []
    loras = [tuple(pair) for pair in settings.pop("loras", None) or []]
    if "loras" in names and "lora_weight" in names:
        values["loras"] = [name for name, _ in loras]
        if loras:
            values["lora_weight"] = loras[0][1]
        if len({weight for _, weight in loras}) > 1:
            messages.append(f"The image used several LoRA weights; the form has one, set to {loras[0][1]:g}.")
    elif loras:
        left_out["loras"] = loras
    for name, value in settings.items():
        (values if name in names else left_out)[name] = value
    if left_out:
        messages.append("Not set by the form: " + ", ".join(f"{k} = {v!r}" for k, v in left_out.items()) + ".")
    return values, left_out, messages


def _local_name(name: str, available: list[str]) -> str | None:
    """A model or LoRA name from another studio ("SDXL\\juggernaut.safetensors") matched to a local key."""
    stem = PureWindowsPath(name).stem if "\\" in name else PurePosixPath(name).stem
    matches = [key for key in available if key.lower() in (name.lower(), stem.lower())]
    return matches[0] if matches else None


def form_updates(registry, form: dict, settings: dict) -> dict:
    """Values for the txt2img form from PNG settings; what this studio cannot use is skipped, with a warning."""
    settings = dict(settings or {})
    skipped = []
    model = settings.get("model")
    if model is not None:
        try:
            registry.model_info(model)
        except InvalidRequest:
            local = _local_name(str(model), registry.model_names())
            if local:
                settings["model"] = local
            else:
                skipped.append(f"model {model!r} is not on this machine")
                settings.pop("model")
    if settings.get("loras"):
        settings["loras"] = [(_local_name(str(n), registry.lora_names()) or n, w) for n, w in settings["loras"]]
    scheduler = settings.get("scheduler")
    if scheduler is not None:
        try:  # the pickers hold A1111's pairs: "DPM++ 2M Karras" becomes DPM++ 2M + Karras
            settings["scheduler"], settings["schedule_type"] = canonical_sampler(
                scheduler, settings.get("schedule_type"))
        except InvalidRequest:
            skipped.append(f"sampler {scheduler!r} is not available")
            settings.pop("scheduler")
            settings.pop("schedule_type", None)
    if "clip_skip" in form:  # A1111 leaves "Clip skip" out when it is 1
        settings.setdefault("clip_skip", 1)
    if "hires_fix" in form:  # the checkbox follows whether the picture had a hires fix
        scale = settings.get("hires_scale")
        settings["hires_fix"] = isinstance(scale, (int, float)) and scale > 1
    values, _, messages = form_values(settings, form)
    for message in messages:
        gr.Warning(message)
    if skipped:
        gr.Warning("Kept the current " + " and ".join(s.split(" ", 1)[0] for s in skipped) + ": "
                   + "; ".join(skipped) + ".")
    return {form[name]: value for name, value in values.items()}


def build(registry, shared) -> None:
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            image = gr.Image(label="Drop an image here (PNG, JPEG or WebP)", type="filepath", image_mode=None,
                             format="png", sources=["upload", "clipboard"], height=420)
            source = gr.Markdown()
        with gr.Column(scale=1):
            parameters = gr.Textbox(label="Stored text", lines=6, max_lines=20, interactive=False,
                                    buttons=["copy"], elem_classes="studio-parameters")
            settings = gr.JSON(label="Settings", open=True)
            unknown = gr.JSON(label="Also in the file (not used by the form)", open=False)
            payload = gr.State(None)
            send_to_buttons(shared, TAB, payload)

    def png_info(image):
        """The metadata text stored in an image and the settings it describes (request field names)."""
        return read_image_info(_upload(image))

    def details(image):
        if not image:
            return "", {}
        _, found = _read(_upload(image))
        return describe(found), found.unknown

    def sendable(image, found):
        return {"image": _upload(image), "settings": found} if image else None

    # preprocess=False: Gradio would decode the picture before the handler could check its size
    image.change(png_info, inputs_kwargs={"image": image}, outputs=[parameters, settings], api_name="png_info",
                 preprocess=False)
    image.change(details, inputs=image, outputs=[source, unknown], api_visibility="private", preprocess=False)
    settings.change(sendable, inputs=[image, settings], outputs=payload, queue=False, api_visibility="private",
                    preprocess=False)
    register_receiver(shared, Receiver(TAB, TITLE, [image], lambda sent: {image: sent.get("image")}))

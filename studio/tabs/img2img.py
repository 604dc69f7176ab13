"""Image to Image: a picture and a prompt; the denoising strength says how much of the picture is redrawn.

`receive(picture, settings)` fills the tab (send-to from any result or PNG Info); `/img2img` is the plain
API endpoint with named parameters.
"""
from __future__ import annotations

import gradio as gr

from pipelines.modes import DEFAULT_DENOISING, RESIZE_MODES
from studio.send_to import Receiver, apply_settings, gallery_sender, picture_of, register_receiver
from studio.forms import lora_strings
from studio.mode_widgets import denoising_slider, resize_mode_radio
from pipelines.modes.images import fitted_size
from studio.picture_form import (COMMON_FIELDS, prompt_controls, results_column, settings_controls, size_of_picture,
                                 wire_generation)
from studio.results import gallery_entries
from studio.spaces_gpu import GPU
from studio.widgets import DEFAULT_SCHEDULER, checked_request, shown_as_gr_error

TITLE = "Image to Image"
FIELDS = COMMON_FIELDS + ("init_image", "denoising_strength", "resize_mode")


def request_values(values: dict) -> dict:
    if values.get("init_image") is None:
        raise gr.Error("init_image: upload a picture (or send one from a result)", title="Invalid setting")
    return {name: values[name] for name in FIELDS}


def build(registry, shared) -> None:
    limits = registry.limits(shared.default_model)
    with gr.Row(equal_height=False):
        with gr.Column(scale=5):
            picture = gr.Image(label="Picture", type="pil", image_mode="RGB", format="png", height=360,
                               sources=["upload", "clipboard"])
            controls = prompt_controls()
            with gr.Row():
                denoising = denoising_slider()
                resize_mode = resize_mode_radio()
            settings = settings_controls(registry, shared, limits)
        with gr.Column(scale=6):
            results = results_column()
            gallery_sender(shared, "img2img", results["gallery"])
    form = {"prompt": controls["prompt"], "negative_prompt": controls["negative_prompt"], **settings,
            "init_image": picture, "denoising_strength": denoising, "resize_mode": resize_mode}
    wire_generation(registry, shared, controls, results, form, request_values, "img2img_live", "img2img")
    picture.upload(lambda model, image: size_of_picture(registry, model, image), inputs=[settings["model"], picture],
                   outputs=[settings["width"], settings["height"]], queue=False, api_visibility="private")

    def receive(payload: dict) -> dict:
        """The picture and its settings into this tab (width and height: the picture's, fitted to the model)."""
        image, found = picture_of(payload), dict(payload.get("settings") or {})
        updates = apply_settings(registry, {k: v for k, v in form.items() if k != "init_image"}, found)
        if image is not None:
            updates[picture] = image
            width, height = sized_for(registry, found.get("model"), image, shared.default_model)
            updates.update({settings["width"]: width, settings["height"]: height})
        return updates

    register_receiver(shared, Receiver("img2img", TITLE, list(form.values()), receive))
    _add_endpoint(registry, shared, limits)


def _add_endpoint(registry, shared, limits) -> None:
    with gr.Column(visible=False):
        text = lambda name, value="": gr.Textbox(value=value, label=name)  # noqa: E731
        number = lambda name, value, precision=None: gr.Number(value=value, precision=precision, label=name)  # noqa: E731
        inputs = {"prompt": text("prompt"), "image": gr.Image(type="pil", label="image"),
                  "negative_prompt": text("negative_prompt"), "model": text("model", shared.default_model),
                  "scheduler": text("scheduler", DEFAULT_SCHEDULER), "steps": number("steps", 20, 0),
                  "guidance_scale": number("guidance_scale", 7.0), "width": number("width", 0, 0),
                  "height": number("height", 0, 0), "seed": number("seed", -1, 0),
                  "num_images": number("num_images", 1, 0),
                  "denoising_strength": number("denoising_strength", DEFAULT_DENOISING),
                  "resize_mode": text("resize_mode", RESIZE_MODES[0]),
                  "loras": gr.Dropdown(choices=[], value=[], multiselect=True, allow_custom_value=True, label="loras"),
                  "schedule_type": text("schedule_type", "Automatic"), "clip_skip": number("clip_skip", 1, 0)}
        images, info, trigger = gr.Gallery(format="png", label="images"), gr.JSON(label="info"), gr.Button()

    @GPU(duration=120)
    def img2img(prompt, image, negative_prompt="", model=None, scheduler=DEFAULT_SCHEDULER, steps=20,
                guidance_scale=7.0, width=0, height=0, seed=-1, num_images=1, denoising_strength=DEFAULT_DENOISING,
                resize_mode=RESIZE_MODES[0], loras=None, schedule_type="Automatic", clip_skip=1):
        """Redraw `image` after `prompt`: denoising_strength 0 returns it, 1 keeps almost nothing of it.
        width / height 0: the picture's own size, fitted to the model. Returns the PNGs and their settings."""
        from studio.api import result_info

        fields = picture_fields(registry, model or shared.default_model, image, width, height)
        with shown_as_gr_error():
            lora_pairs = lora_strings(loras)
        request = checked_request(registry, prompt=prompt, negative_prompt=negative_prompt,
                                  model=model or shared.default_model, scheduler=scheduler,
                                  schedule_type=schedule_type, steps=steps, guidance_scale=guidance_scale, seed=seed,
                                  num_images=num_images, loras=lora_pairs, clip_skip=clip_skip,
                                  denoising_strength=denoising_strength, resize_mode=resize_mode, **fields)
        with shown_as_gr_error():
            result = registry.generate(request)
        return gallery_entries(result), result_info(result)

    trigger.click(img2img, inputs_kwargs=inputs, outputs=[images, info], api_name="img2img",
                  **shared.generation_options())


def picture_fields(registry, model: str, image, width, height) -> dict:
    """init_image, width and height of an API call; a width or height of 0 (or none) is the picture's, fitted
    to the model."""
    if image is None:
        raise gr.Error("image: a picture is required", title="Invalid setting")
    if not width or not height:
        with shown_as_gr_error():
            own = fitted_size(registry.limits(model), image)
        width, height = width or own[0], height or own[1]
    return {"init_image": image, "width": width, "height": height}


def sized_for(registry, model, image, default_model: str) -> tuple[int, int]:
    """The picture's size fitted to the model the settings name (the default model when it is not here)."""
    try:
        limits = registry.limits(model)
    except Exception:
        limits = registry.limits(default_model)
    return fitted_size(limits, image)

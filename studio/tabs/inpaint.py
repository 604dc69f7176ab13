"""Inpaint: repaint part of a picture (brush over it in the browser, or upload a mask: white = repaint), or
outpaint: extend the canvas on chosen sides and fill it. Pixels outside the (blurred) mask are kept.

`receive(picture, settings)` fills the tab (send-to); `/inpaint` is the plain API endpoint.
"""
from __future__ import annotations

import gradio as gr

from pipelines.modes import DEFAULT_DENOISING, DEFAULT_MASK_BLUR, RESIZE_MODES
from studio.send_to import Receiver, apply_settings, gallery_sender, picture_of, register_receiver
from studio.forms import lora_strings
from studio.mode_widgets import (denoising_slider, editor_picture_and_mask, inpaint_widgets, outpaint_widgets,
                                 resize_mode_radio)
from studio.picture_form import (COMMON_FIELDS, prompt_controls, results_column, settings_controls,
                                 size_of_picture, wire_generation)
from studio.results import gallery_entries
from studio.spaces_gpu import GPU
from studio.tabs.img2img import picture_fields, sized_for
from studio.widgets import DEFAULT_SCHEDULER, checked_request, shown_as_gr_error

TITLE = "Inpaint"
MASK_SOURCES = ("Draw", "Upload")
INPAINT_FIELDS = ("mask_blur", "masked_content", "inpaint_area", "inpaint_padding")
BRUSH = gr.Brush(colors=[("#ffffff", 0.75)], default_color=("#ffffff", 0.75), default_size=16, color_mode="fixed")


def request_values(values: dict) -> dict:
    """The widgets' values as request fields: the picture and mask out of the editor (or the uploaded mask);
    with outpainting on, the new area is the mask."""
    picture, drawn = editor_picture_and_mask(values["editor"])
    if picture is None:
        raise gr.Error("init_image: upload a picture (or send one from a result)", title="Invalid setting")
    fields = {name: values[name] for name in COMMON_FIELDS + ("denoising_strength", "resize_mode") + INPAINT_FIELDS}
    fields["init_image"] = picture
    if values["outpaint"]:
        fields.update(outpaint_pixels=values["outpaint_pixels"], outpaint_directions=values["outpaint_directions"])
        return fields
    mask = drawn if values["mask_source"] == "Draw" else values["mask_upload"]
    if mask is None:
        raise gr.Error("mask: paint over the area to repaint, or upload a mask", title="Invalid setting")
    fields["mask"] = mask
    return fields


def build(registry, shared) -> None:
    limits = registry.limits(shared.default_model)
    with gr.Row(equal_height=False):
        with gr.Column(scale=5):
            editor = gr.ImageEditor(label="Picture: brush over the area to repaint", type="pil", image_mode="RGBA",
                                    format="png", height=420, sources=["upload", "clipboard"], brush=BRUSH,
                                    transforms=(), layers=False)
            mask_source = gr.Radio(list(MASK_SOURCES), value="Draw", label="Mask")
            mask_upload = gr.Image(label="Mask (white = repaint)", type="pil", image_mode="L", format="png",
                                   height=240, visible=False, sources=["upload", "clipboard"])
            controls = prompt_controls()
            with gr.Row():
                denoising = denoising_slider()
                resize_mode = resize_mode_radio()
            inpaint = inpaint_widgets()
            with gr.Accordion("Outpainting", open=False):
                outpaint = gr.Checkbox(False, label="Outpaint: extend the canvas instead of using the mask")
                outpaint_settings = outpaint_widgets()
            settings = settings_controls(registry, shared, limits)
        with gr.Column(scale=6):
            results = results_column()
            gallery_sender(shared, "inpaint", results["gallery"])
    form = {"prompt": controls["prompt"], "negative_prompt": controls["negative_prompt"], **settings,
            "denoising_strength": denoising, "resize_mode": resize_mode, **inpaint}
    inputs = {**form, "editor": editor, "mask_source": mask_source, "mask_upload": mask_upload,
              "outpaint": outpaint, **outpaint_settings}
    wire_generation(registry, shared, controls, results, inputs, request_values, "inpaint_live", "inpaint")
    mask_source.change(lambda source: gr.Image(visible=source == "Upload"), inputs=mask_source,
                       outputs=mask_upload, queue=False, api_visibility="private")
    outpaint.change(lambda on: "fill" if on else "original", inputs=outpaint, outputs=inpaint["masked_content"],
                    queue=False, api_visibility="private")  # a new area has no original content to keep

    def on_upload(model, value):
        return size_of_picture(registry, model, editor_picture_and_mask(value)[0])

    editor.upload(on_upload, inputs=[settings["model"], editor], outputs=[settings["width"], settings["height"]],
                  queue=False, api_visibility="private")

    def receive(payload: dict) -> dict:
        """A picture (to paint the mask over) and its settings into this tab."""
        image, found = picture_of(payload), dict(payload.get("settings") or {})
        updates = apply_settings(registry, form, found)
        if image is not None:
            updates[editor] = {"background": image, "layers": [], "composite": image}
            width, height = sized_for(registry, found.get("model"), image, shared.default_model)
            updates.update({settings["width"]: width, settings["height"]: height})
        return updates

    register_receiver(shared, Receiver("inpaint", TITLE, [*form.values(), editor], receive))
    _add_endpoint(registry, shared)


def _add_endpoint(registry, shared) -> None:
    with gr.Column(visible=False):
        text = lambda name, value="": gr.Textbox(value=value, label=name)  # noqa: E731
        number = lambda name, value, precision=None: gr.Number(value=value, precision=precision, label=name)  # noqa: E731
        inputs = {"prompt": text("prompt"), "image": gr.Image(type="pil", label="image"),
                  "mask": gr.Image(type="pil", label="mask"), "negative_prompt": text("negative_prompt"),
                  "model": text("model", shared.default_model), "scheduler": text("scheduler", DEFAULT_SCHEDULER),
                  "steps": number("steps", 20, 0), "guidance_scale": number("guidance_scale", 7.0),
                  "width": number("width", 0, 0), "height": number("height", 0, 0), "seed": number("seed", -1, 0),
                  "num_images": number("num_images", 1, 0),
                  "denoising_strength": number("denoising_strength", DEFAULT_DENOISING),
                  "resize_mode": text("resize_mode", RESIZE_MODES[0]),
                  "mask_blur": number("mask_blur", DEFAULT_MASK_BLUR, 0),
                  "inpaint_area": text("inpaint_area", "Whole picture"),
                  "inpaint_padding": number("inpaint_padding", 32, 0), "masked_content": text("masked_content"),
                  "outpaint_pixels": number("outpaint_pixels", 0, 0),
                  "outpaint_directions": gr.Dropdown(choices=["left", "right", "up", "down"], value=[],
                                                     multiselect=True, label="outpaint_directions"),
                  "loras": gr.Dropdown(choices=[], value=[], multiselect=True, allow_custom_value=True, label="loras"),
                  "schedule_type": text("schedule_type", "Automatic"), "clip_skip": number("clip_skip", 1, 0)}
        images, info, trigger = gr.Gallery(format="png", label="images"), gr.JSON(label="info"), gr.Button()

    @GPU(duration=120)
    def inpaint(prompt, image, mask=None, negative_prompt="", model=None, scheduler=DEFAULT_SCHEDULER, steps=20,
                guidance_scale=7.0, width=0, height=0, seed=-1, num_images=1, denoising_strength=DEFAULT_DENOISING,
                resize_mode=RESIZE_MODES[0], mask_blur=DEFAULT_MASK_BLUR, inpaint_area="Whole picture",
                inpaint_padding=32, masked_content="", outpaint_pixels=0, outpaint_directions=None, loras=None,
                schedule_type="Automatic", clip_skip=1):
        """Repaint where `mask` is white (transparent-background masks: where opaque), keeping every other pixel;
        or, with outpaint_pixels and outpaint_directions (left, right, up, down), extend the picture and fill
        the new area. masked_content: original (default for inpainting), fill (default for outpainting), latent
        noise, latent nothing. width / height 0: the picture's own size. Returns the PNGs and their settings."""
        from studio.api import result_info

        model = model or shared.default_model
        fields = picture_fields(registry, model, image, width, height)
        with shown_as_gr_error():
            lora_pairs = lora_strings(loras)
        if outpaint_pixels:
            fields.update(outpaint_pixels=outpaint_pixels, outpaint_directions=outpaint_directions or [])
        else:
            fields["mask"] = mask
        request = checked_request(registry, prompt=prompt, negative_prompt=negative_prompt, model=model,
                                  scheduler=scheduler, schedule_type=schedule_type, steps=steps,
                                  guidance_scale=guidance_scale, seed=seed, num_images=num_images, loras=lora_pairs,
                                  clip_skip=clip_skip, denoising_strength=denoising_strength,
                                  resize_mode=resize_mode, mask_blur=mask_blur, inpaint_area=inpaint_area,
                                  inpaint_padding=inpaint_padding, masked_content=masked_content or None, **fields)
        if request.mask is None and not request.outpaint_pixels:
            raise gr.Error("mask: give a mask (white = repaint), or outpaint_pixels and outpaint_directions",
                           title="Invalid setting")
        with shown_as_gr_error():
            result = registry.generate(request)
        return gallery_entries(result), result_info(result)

    trigger.click(inpaint, inputs_kwargs=inputs, outputs=[images, info], api_name="inpaint",
                  **shared.generation_options())

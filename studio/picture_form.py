"""What the Image to Image and Inpaint tabs share: the generation settings, the results column, the live
handler, and fitting an uploaded picture's size to the model."""
from __future__ import annotations

import gradio as gr
from PIL import Image

from pipelines.modes.images import fitted_size
from pipelines.validation import MAX_CLIP_SKIP
from studio.mode_widgets import follow_model, size_slider
from studio.fields import field_slider, seed_number
from studio.results import done_html, gallery_entries, progress_html, queue_status_on, summary
from studio.sessions import run_key
from studio.widgets import (checked_request, ending_with, hint_steps_for, lora_picker, model_dropdown,
                            require_prompt, run_controls, schedule_dropdown, scheduler_dropdown, steps_slider,
                            streamed_generation)

# Request fields every picture tab sends (plus the LoRA picker's loras / lora_weight).
COMMON_FIELDS = ("prompt", "negative_prompt", "model", "scheduler", "schedule_type", "steps", "guidance_scale",
                 "width", "height", "seed", "num_images", "clip_skip", "loras", "lora_weight")


def prompt_controls() -> dict:
    prompt = gr.Textbox(label="Prompt", lines=2, placeholder="Type what the new picture should show",
                        elem_classes="studio-prompt")
    negative = gr.Textbox(label="Negative prompt", lines=1, placeholder="What it should not show (optional)")
    with gr.Row():
        generate = gr.Button("Generate", variant="primary", scale=3, elem_classes="studio-generate")
        skip = gr.Button("Skip", scale=1, elem_classes="studio-skip", min_width=60)
        stop = gr.Button("Stop", variant="stop", scale=1, elem_classes="studio-stop", min_width=60)
    return {"prompt": prompt, "negative_prompt": negative, "generate_button": generate, "skip_button": skip,
            "stop_button": stop}


def settings_controls(registry, shared, limits) -> dict:
    """Model, sampler, LoRAs, steps, CFG, size, Clip skip, seed and image count; sizes follow the model."""
    with gr.Row(equal_height=True):
        model = model_dropdown(registry, shared, scale=4)
        scheduler = scheduler_dropdown(scale=3)
        schedule_type = schedule_dropdown(scale=3)
    with gr.Row(equal_height=True):
        loras, lora_weight = lora_picker(registry, shared)
    with gr.Row():
        steps = steps_slider(limits)
        guidance = field_slider(limits.min_guidance, limits.max_guidance, value=7.0, step=0.5, label="CFG scale")
    with gr.Row():
        width, height = size_slider("Width", limits), size_slider("Height", limits)
        clip_skip = field_slider(1, MAX_CLIP_SKIP, value=1, step=1, label="Clip skip", min_width=160)
    with gr.Row(equal_height=True):
        seed = seed_number(info="-1 = random", scale=3)
        num_images = field_slider(limits.min_images, limits.max_images, value=1, step=1, label="Images", scale=3)
    hint_steps_for(scheduler, steps)
    follow_model(registry, model, width, height, steps, num_images)
    return {"model": model, "scheduler": scheduler, "schedule_type": schedule_type, "loras": loras,
            "lora_weight": lora_weight, "steps": steps, "guidance_scale": guidance, "width": width,
            "height": height, "clip_skip": clip_skip, "seed": seed, "num_images": num_images}


def results_column() -> dict:
    progress = gr.HTML(progress_html(0, 0, "Ready"), show_label=False, padding=False)
    gallery = gr.Gallery(label="Images", format="png", columns=2, height=520, object_fit="contain",
                         elem_classes="studio-fit-520", buttons=["download", "fullscreen"], interactive=False)
    info = gr.Textbox(label="Parameters", lines=4, interactive=False, buttons=["copy"],
                      elem_classes="studio-parameters")
    return {"progress": progress, "gallery": gallery, "info": info}


def size_of_picture(registry, model: str, picture) -> tuple:
    """Width and height slider values for a newly uploaded picture (unchanged when there is none)."""
    if not isinstance(picture, Image.Image):
        return gr.skip(), gr.skip()
    try:
        width, height = fitted_size(registry.limits(model), picture)
    except Exception:  # a half-typed model path: the sliders stay, Generate names the problem
        return gr.skip(), gr.skip()
    return width, height


def wire_generation(registry, shared, controls: dict, results: dict, fields: dict, to_values, api_name: str,
                    tab: str) -> None:
    """Generate streams progress and previews; this browser tab's Stop and Skip reach its run
    (studio.widgets.run_controls). `to_values(values)` turns the widget values into request fields (the
    picture and mask taken out of their widgets)."""
    from studio.spaces_gpu import GPU

    progress, gallery, info = results["progress"], results["gallery"], results["info"]
    button = controls["generate_button"]
    prepare, ready, busy = run_controls(shared, tab, run_button=button, stop_button=controls["stop_button"],
                                        skip_button=controls["skip_button"], progress=progress)

    @GPU(duration=120)
    def generate(request: gr.Request, **values):
        def run():
            yield {progress: progress_html(0, 1, "Starting: checking the settings, loading the model…"),
                   button: busy()}
            require_prompt(values.get("prompt"))
            checked = checked_request(registry, **to_values(values))
            result, stopped = yield from streamed_generation(
                registry, checked, progress=progress, gallery=gallery, shared=shared, key=run_key(request, tab),
                loading=f"Loading {checked.model}…", user=shared.user_of(request))
            if result is None:
                yield {progress: progress_html(0, 1, "Stopped before it started"), button: ready()}
                return
            yield {gallery: gallery_entries(result, shared.show), info: summary(result),
                   progress: done_html(result, stopped), button: ready()}

        yield from ending_with({button: ready(), progress: progress_html(0, 0, "Ready")}, run())

    gr.on([button.click, controls["prompt"].submit], prepare, outputs=[button, progress], queue=False,
          api_visibility="private").then(
        generate, inputs_kwargs=fields, outputs=[gallery, info, progress, button], **queue_status_on(progress),
        api_name=api_name, api_visibility="undocumented", **shared.generation_options())

"""Text to Image: prompt and settings on the left; progress, live previews and results on the right."""
from __future__ import annotations

import gradio as gr

from pipelines.requests import InvalidRequest
from studio.results import done_html, gallery_entries, progress_html, summary
from studio.spaces_gpu import GPU
from studio.widgets import (checked_request, hint_steps_for, lora_picker, model_dropdown, scheduler_dropdown,
                            step_cache_slider, steps_slider, stop_with, streamed_generation)

TITLE = "Text to Image"

EXAMPLE_PROMPTS = [  # what the bundled shapes model was trained to draw
    "a large red circle in the top left on a blue background",
    "small green star, bottom right, white background",
    "a black background with a large yellow triangle in the center",
    "a small purple square at the top against orange",
    "a large white star on the left with a gray background",
    "blue circle, bottom left, yellow background",
]


def _size_slider(label: str, limits, value: int) -> gr.Slider:
    return gr.Slider(limits.min_size, limits.max_size, value=value, step=limits.size_multiple, label=label)


def _fits(value, low: int, high: int, multiple: int) -> bool:
    return isinstance(value, (int, float)) and low <= value <= high and value % multiple == 0


def _settings_for_model(registry, model: str, width, height) -> tuple:
    """Slider ranges of the chosen model; a size the model cannot take becomes its default size.

    A size it can take is kept, so settings sent from PNG Info survive the model switch they cause.
    """
    try:
        limits = registry.limits(model)
    except InvalidRequest:  # a half-typed path: the Generate button names the problem
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    low, high, multiple = limits.min_size, limits.max_size, limits.size_multiple
    size = {"minimum": low, "maximum": high, "step": multiple}
    width = width if _fits(width, low, high, multiple) else limits.default_width
    height = height if _fits(height, low, high, multiple) else limits.default_height
    return (gr.Slider(value=width, **size), gr.Slider(value=height, **size),
            gr.Slider(minimum=limits.min_steps, maximum=limits.max_steps),
            gr.Slider(minimum=limits.min_images, maximum=limits.max_images))


def build(registry, shared) -> None:
    limits = registry.limits(shared.default_model)
    last_seed = gr.State(None)
    with gr.Row(equal_height=False):
        with gr.Column(scale=5):
            prompt = gr.Textbox(label="Prompt", lines=3, placeholder=EXAMPLE_PROMPTS[0], autofocus=True)
            negative_prompt = gr.Textbox(label="Negative prompt", lines=2,
                                         placeholder="what the image should not show")
            with gr.Row():
                generate_button = gr.Button("Generate", variant="primary", scale=3)
                stop_button = gr.Button("Stop", variant="stop", scale=1)
            with gr.Row(equal_height=True):
                model = model_dropdown(registry, shared, scale=4)
                scheduler = scheduler_dropdown(scale=3)
            with gr.Row(equal_height=True):
                loras, lora_weight = lora_picker(registry, shared)
                refresh_button = gr.Button("↻ Refresh models", scale=1, min_width=100)
            with gr.Row():
                steps = steps_slider(limits)
                guidance_scale = gr.Slider(limits.min_guidance, limits.max_guidance, value=7.0, step=0.5,
                                           label="CFG scale")
            with gr.Row():
                width = _size_slider("Width", limits, limits.default_width)
                height = _size_slider("Height", limits, limits.default_height)
            with gr.Row(equal_height=True):
                seed = gr.Number(value=-1, precision=0, label="Seed", info="-1 = random; ⚄ random, ♻ last seed",
                                 scale=3)
                random_seed = gr.Button("⚄", elem_classes="studio-tool-button", scale=0, min_width=40)
                reuse_seed = gr.Button("♻", elem_classes="studio-tool-button", scale=0, min_width=40)
                num_images = gr.Slider(limits.min_images, limits.max_images, value=1, step=1,
                                       label="Images", scale=3)
            with gr.Accordion("Speed", open=False):
                step_cache = step_cache_slider()
            gr.Examples(examples=[[text] for text in EXAMPLE_PROMPTS], inputs=[prompt],
                        label="Example prompts for the shapes model")
        with gr.Column(scale=6):
            progress = gr.HTML(progress_html(0, 0, "Ready"), show_label=False, padding=False)
            gallery = gr.Gallery(label="Images", format="png", columns=2, height=620, object_fit="contain",
                                 buttons=["download", "fullscreen"], interactive=False)
            info = gr.Textbox(label="Parameters", lines=4, interactive=False, buttons=["copy"])

    form = {"prompt": prompt, "negative_prompt": negative_prompt, "model": model, "scheduler": scheduler,
            "steps": steps, "guidance_scale": guidance_scale, "width": width, "height": height,
            "seed": seed, "num_images": num_images, "loras": loras, "lora_weight": lora_weight,
            "step_cache": step_cache}
    shared.txt2img_form.update(form)
    shared.refresh_buttons.append(refresh_button)

    @GPU(duration=120)
    def generate(**values):
        request = checked_request(registry, **values)
        result = yield from streamed_generation(registry, request, progress=progress, gallery=gallery,
                                                loading=f"Loading {request.model}…")
        yield {gallery: gallery_entries(result), info: summary(result), last_seed: result.seeds[0],
               progress: done_html(result)}

    run_event = gr.on([generate_button.click, prompt.submit], generate, inputs_kwargs=form,
                      outputs=[gallery, info, progress, last_seed], show_progress="hidden",
                      api_name="txt2img_live", api_visibility="undocumented", **shared.generation_options())
    stop_with(stop_button, run_event, progress)
    hint_steps_for(scheduler, steps)

    random_seed.click(lambda: -1, outputs=seed, queue=False, api_visibility="private")

    def reuse(previous):
        if previous is None:
            gr.Warning("No image generated yet: nothing to reuse.")
            return gr.skip()
        return previous

    reuse_seed.click(reuse, inputs=last_seed, outputs=seed, queue=False, api_visibility="private")
    model.change(lambda chosen, w, h: _settings_for_model(registry, chosen, w, h),
                 inputs=[model, width, height], outputs=[width, height, steps, num_images], queue=False,
                 api_visibility="private")

"""API-only endpoints with clean, named signatures for gradio_client and plain HTTP.

The UI's handlers are generators (live previews, Stop); `/txt2img` here is one plain call that returns the
finished images and their settings. Its widgets are hidden: they only give the endpoint its parameter
types and defaults.
"""
from __future__ import annotations

import gradio as gr

from studio.forms import lora_strings
from studio.results import gallery_entries
from studio.spaces_gpu import GPU
from studio.widgets import DEFAULT_SCHEDULER, checked_request, shown_as_gr_error
from pipelines.metadata import a1111_parameters


def result_info(result) -> dict:
    """What a client needs besides the pixels: seeds, the A1111 parameters of each image, saved paths."""
    return {"seeds": result.seeds, "parameters": [a1111_parameters(item.request) for item in result.items],
            "paths": [item.path for item in result.items], "seconds": round(result.seconds, 3),
            "request": result.request.to_json_dict()}


def add_endpoints(registry, shared) -> None:
    limits = registry.limits(shared.default_model)
    with gr.Column(visible=False):
        form = {
            "prompt": gr.Textbox(label="prompt"),
            "negative_prompt": gr.Textbox(value="", label="negative_prompt"),
            "model": gr.Textbox(value=shared.default_model, label="model"),
            "scheduler": gr.Textbox(value=DEFAULT_SCHEDULER, label="scheduler"),
            "steps": gr.Number(value=20, precision=0, label="steps"),
            "guidance_scale": gr.Number(value=7.0, label="guidance_scale"),
            "width": gr.Number(value=limits.default_width, precision=0, label="width"),
            "height": gr.Number(value=limits.default_height, precision=0, label="height"),
            "seed": gr.Number(value=-1, precision=0, label="seed"),
            "num_images": gr.Number(value=1, precision=0, label="num_images"),
            # "KEY_OR_PATH:WEIGHT" strings (weight 1 when left out); last, so positional callers keep working
            "loras": gr.Dropdown(choices=[], value=[], multiselect=True, allow_custom_value=True, label="loras"),
            "schedule_type": gr.Textbox(value="Automatic", label="schedule_type"),
            "clip_skip": gr.Number(value=1, precision=0, label="clip_skip"),  # new parameters go last
            # runs of num_images each, and seed variations (A1111's Variation seed / strength); last, as above
            "batch_count": gr.Number(value=1, precision=0, label="batch_count"),
            "variation_seed": gr.Number(value=-1, precision=0, label="variation_seed"),
            "variation_strength": gr.Number(value=0.0, label="variation_strength"),
            "hires_scale": gr.Number(value=1.0, label="hires_scale"),
            "hires_steps": gr.Number(value=0, precision=0, label="hires_steps"),
            "hires_upscaler": gr.Textbox(value="Latent", label="hires_upscaler"),
            "hires_denoising": gr.Number(value=0.7, label="hires_denoising"),
            "step_cache": gr.Number(value=0, precision=0, label="step_cache"),  # 0 off, N: see pipelines/fast
        }
        images = gr.Gallery(format="png", label="images")
        info = gr.JSON(label="info")
        trigger = gr.Button()

    @GPU(duration=120)
    def txt2img(prompt, negative_prompt, model, scheduler, steps, guidance_scale, width, height, seed,
                num_images, loras=None, schedule_type="Automatic", clip_skip=1, batch_count=1, variation_seed=-1,
                variation_strength=0.0, hires_scale=1.0, hires_steps=0, hires_upscaler="Latent",
                hires_denoising=0.7, step_cache=0, request: gr.Request = None):
        """Generate images; returns the PNGs (with their parameters embedded) and their seeds/settings.
        `loras`: e.g. ["my-lora:0.8", "models/ink.safetensors"] (a key or a path, weight 1 when left out).
        `schedule_type`: A1111's Schedule type (Automatic: the sampler's own; Karras, Exponential, ...).
        `clip_skip`: AUTOMATIC1111's Clip skip, 1 to 12 (SDXL ignores it, as A1111 does).
        `batch_count` runs of `num_images` make batch_count * num_images images, seeds in order; a
        `variation_strength` above 0 blends in `variation_seed`'s noise (-1: a random one), as A1111 does.
        Hires fix: `hires_scale` > 1 draws width x height, upscales (`hires_upscaler`: Latent, Latent (nearest),
        ..., Lanczos, Nearest) and denoises again at `hires_denoising` for `hires_steps` (0: `steps`).
        `step_cache` N > 0 reuses the UNet's deep features between steps, recomputing them every N-th call."""
        with shown_as_gr_error():
            lora_pairs = lora_strings(loras)
        checked = checked_request(registry, prompt=prompt, negative_prompt=negative_prompt, model=model,
                                  scheduler=scheduler, schedule_type=schedule_type, steps=steps,
                                  guidance_scale=guidance_scale, width=width, height=height, seed=seed,
                                  num_images=num_images, loras=lora_pairs, clip_skip=clip_skip,
                                  batch_count=batch_count, variation_seed=variation_seed,
                                  variation_strength=variation_strength, hires_scale=hires_scale,
                                  hires_steps=hires_steps, hires_upscaler=hires_upscaler,
                                  hires_denoising=hires_denoising, step_cache=step_cache)
        with shown_as_gr_error(), shared.device_slots:  # a run left going by a closed tab finishes first
            result = registry.generate(checked, user=shared.user_of(request))
        return gallery_entries(result, shared.show), result_info(result)

    # preprocess=False: the handler sees exactly what the client sent, and studio.forms names any bad field
    trigger.click(txt2img, inputs_kwargs=form, outputs=[images, info], api_name="txt2img", preprocess=False,
                  **shared.generation_options())

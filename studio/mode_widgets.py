"""Widgets of the picture modes (image to image, inpainting, outpainting, hires fix) and the size controls
every generating tab shares: sliders whose ranges follow the chosen model."""
from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from pipelines.modes import (DEFAULT_DENOISING, DEFAULT_MASK_BLUR, HIRES_UPSCALERS, INPAINT_AREAS, MASKED_CONTENT,
                             MAX_HIRES_SCALE, OUTPAINT_DIRECTIONS, RESIZE_MODES)
from pipelines.modes.validation import MAX_MASK_BLUR, MAX_PADDING
from pipelines.requests import InvalidRequest


def fits(value, low: int, high: int, multiple: int) -> bool:
    return isinstance(value, (int, float)) and low <= value <= high and value % multiple == 0


def size_updates(registry, model: str, width, height) -> tuple:
    """(width, height, steps, images) slider updates for a newly chosen model: its ranges; a size it cannot
    take becomes its default size, one it can take is kept (so settings sent from PNG Info survive)."""
    try:
        limits = registry.limits(model)
    except InvalidRequest:  # a half-typed path: generating names the problem
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    low, high, multiple = limits.min_size, limits.max_size, limits.size_multiple
    size = {"minimum": low, "maximum": high, "step": multiple}
    width = width if fits(width, low, high, multiple) else limits.default_width
    height = height if fits(height, low, high, multiple) else limits.default_height
    return (gr.Slider(value=width, **size), gr.Slider(value=height, **size),
            gr.Slider(minimum=limits.min_steps, maximum=limits.max_steps),
            gr.Slider(minimum=limits.min_images, maximum=limits.max_images))


def follow_model(registry, model: gr.Dropdown, width: gr.Slider, height: gr.Slider, steps: gr.Slider,
                 num_images: gr.Slider) -> None:
    """Keep the size, steps and image-count sliders within the chosen model's limits."""
    def sizes_for_model(chosen, w, h):
        return size_updates(registry, chosen, w, h)

    model.change(sizes_for_model, inputs=[model, width, height], outputs=[width, height, steps, num_images],
                 queue=False, api_visibility="private")


def size_slider(label: str, limits, value: int | None = None) -> gr.Slider:
    default = limits.default_width if label == "Width" else limits.default_height
    return gr.Slider(limits.min_size, limits.max_size, value=value or default, step=limits.size_multiple,
                     label=label)


def denoising_slider(value: float = DEFAULT_DENOISING, label: str = "Denoising strength") -> gr.Slider:
    return gr.Slider(0.0, 1.0, value=value, step=0.01, label=label,
                     info="0 returns the picture; 1 keeps almost nothing of it")


def resize_mode_radio() -> gr.Radio:
    return gr.Radio(list(RESIZE_MODES), value=RESIZE_MODES[0], label="Resize mode",
                    info="how the picture becomes width x height")


def inpaint_widgets() -> dict[str, gr.components.Component]:
    """Mask blur, masked content, inpaint area and its padding (A1111's inpaint settings)."""
    with gr.Row():
        blur = gr.Slider(0, MAX_MASK_BLUR, value=DEFAULT_MASK_BLUR, step=1, label="Mask blur")
        content = gr.Radio(list(MASKED_CONTENT), value="original", label="Masked content")
    with gr.Row():
        area = gr.Radio(list(INPAINT_AREAS), value=INPAINT_AREAS[0], label="Inpaint area",
                        info="Only masked: the region around the mask is repainted at width x height")
        padding = gr.Slider(0, MAX_PADDING, value=32, step=4, label="Only masked padding, pixels")
    return {"mask_blur": blur, "masked_content": content, "inpaint_area": area, "inpaint_padding": padding}


def hires_widgets(limits) -> dict[str, gr.components.Component]:
    """The hires fix, as request fields (plus the `hires_fix` checkbox that switches it on)."""
    with gr.Accordion("Hires fix", open=False):
        enable = gr.Checkbox(False, label="Hires fix", info="draw at width x height, upscale, then denoise again")
        with gr.Row():
            upscaler = gr.Dropdown(list(HIRES_UPSCALERS), value="Latent", label="Upscaler")
            scale = gr.Slider(1.0, MAX_HIRES_SCALE, value=2.0, step=0.05, label="Upscale by")
        with gr.Row():
            steps = gr.Slider(0, limits.max_steps, value=0, step=1, label="Hires steps",
                              info="0: as many as the first pass")
            denoising = denoising_slider(0.7)
    return {"hires_fix": enable, "hires_upscaler": upscaler, "hires_scale": scale, "hires_steps": steps,
            "hires_denoising": denoising}


def outpaint_widgets() -> dict[str, gr.components.Component]:
    with gr.Row():
        pixels = gr.Slider(8, 256, value=64, step=8, label="Pixels to expand")
        sides = gr.CheckboxGroup(list(OUTPAINT_DIRECTIONS), value=["right"], label="Outpainting direction")
    return {"outpaint_pixels": pixels, "outpaint_directions": sides}


def _as_pil(value: Any) -> Image.Image | None:
    if value is None or isinstance(value, Image.Image):
        return value
    return Image.fromarray(np.asarray(value))


def editor_picture_and_mask(value: Any) -> tuple[Image.Image | None, Image.Image | None]:
    """An ImageEditor's value -> (the picture, the mask: white where any brush layer is painted; None when
    nothing is). The picture is the background (the upload) without the strokes."""
    if not isinstance(value, dict):
        return _as_pil(value), None
    background = _as_pil(value.get("background"))
    layers = [_as_pil(layer) for layer in value.get("layers") or [] if layer is not None]
    if background is None:
        return None, None
    painted = np.zeros((background.height, background.width), dtype=bool)
    for layer in layers:
        alpha = np.asarray(layer.convert("RGBA").resize(background.size))[..., 3]
        painted |= alpha > 0
    mask = Image.fromarray(painted.astype(np.uint8) * 255, "L") if painted.any() else None
    return background.convert("RGB"), mask

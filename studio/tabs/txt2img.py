"""Text to Image: prompt and settings on the left; progress, live previews and results on the right."""
from __future__ import annotations

import gradio as gr

from pipelines.aspect import aspect_presets
from pipelines.requests import InvalidRequest
from pipelines.validation import MAX_BATCH_COUNT, MAX_CLIP_SKIP
from studio.embedding_widgets import embedding_pickers, wire_embedding_pickers
from studio.fields import field_slider, seed_number
from studio.results import done_html, gallery_entries, progress_html, queue_status_on, send_payloads, summary
from studio.send_to import Receiver, register_receiver, send_to_buttons
from studio.sessions import run_key
from studio.settings import remember_form, styles_panel
from studio.mode_widgets import hires_widgets
from studio.spaces_gpu import GPU
from studio.widgets import (checked_request, ending_with, hint_steps_for, lora_picker, model_dropdown, require_prompt,
                            run_controls, schedule_dropdown, scheduler_dropdown, step_cache_slider, steps_slider,
                            streamed_generation)

TITLE = "Text to Image"
TAB = "txt2img"

EXAMPLE_PROMPTS = [  # what the bundled shapes model was trained to draw
    "a large red circle in the top left on a blue background",
    "small green star, bottom right, white background",
    "a black background with a large yellow triangle in the center",
    "a small purple square at the top against orange",
    "a large white star on the left with a gray background",
    "blue circle, bottom left, yellow background",
]
PROMPT_HINT = "Type what the picture should show (or pick an example below). Ctrl+Enter generates, Esc stops."


def _size_slider(label: str, limits, value: int) -> gr.Slider:
    return field_slider(limits.min_size, limits.max_size, value=value, step=limits.size_multiple, label=label,
                       scale=3)


def _fits(value, low: int, high: int, multiple: int) -> bool:
    return isinstance(value, (int, float)) and low <= value <= high and value % multiple == 0


def preset_choices(limits) -> list[tuple[str, str]]:
    return [(preset.label, f"{preset.width}x{preset.height}") for preset in aspect_presets(limits)]


def _settings_for_model(registry, model: str, width, height) -> tuple:
    """Slider ranges and size presets of the chosen model; a size the model cannot take becomes its default.

    A size it can take is kept, so settings sent from PNG Info survive the model switch they cause.
    """
    try:
        limits = registry.limits(model)
    except InvalidRequest:  # a half-typed path: the Generate button names the problem
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
    low, high, multiple = limits.min_size, limits.max_size, limits.size_multiple
    size = {"minimum": low, "maximum": high, "step": multiple}
    width = width if _fits(width, low, high, multiple) else limits.default_width
    height = height if _fits(height, low, high, multiple) else limits.default_height
    return (gr.Slider(value=width, **size), gr.Slider(value=height, **size),
            gr.Slider(minimum=limits.min_steps, maximum=limits.max_steps),
            gr.Slider(minimum=limits.min_images, maximum=limits.max_images),
            gr.Dropdown(choices=preset_choices(limits), value=None))


def restore_settings(registry, form: dict, saved: dict) -> dict:
    """Form updates from settings the browser kept; a model, sampler or LoRA no longer here is left out."""
    from pipelines import scheduler_names

    saved = dict(saved)
    if saved.get("model") is not None:
        try:
            registry.model_info(saved["model"])
        except InvalidRequest:
            saved.pop("model")
    if saved.get("scheduler") not in scheduler_names():
        saved.pop("scheduler", None)
    if isinstance(saved.get("loras"), list):
        known = set(registry.lora_names())
        saved["loras"] = [name for name in saved["loras"] if name in known]
    return {form[name]: value for name, value in saved.items() if value is not None}


def build(registry, shared) -> None:
    limits = registry.limits(shared.default_model)
    last_seed = gr.State(None)
    payloads, selected = gr.State([]), gr.State(None)  # what each gallery entry (and the chosen one) sends
    with gr.Row(equal_height=False):
        with gr.Column(scale=5):
            prompt = gr.Textbox(label="Prompt", lines=3, placeholder=PROMPT_HINT, autofocus=True,
                                elem_classes="studio-prompt")
            negative_prompt = gr.Textbox(label="Negative prompt", lines=2,
                                         placeholder="What the picture should not show (optional)")
            embeddings = embedding_pickers(registry, shared.default_model)
            with gr.Row():
                generate_button = gr.Button("Generate", variant="primary", scale=3, elem_classes="studio-generate")
                skip_button = gr.Button("Skip", scale=1, elem_classes="studio-skip", min_width=60)
                stop_button = gr.Button("Stop", variant="stop", scale=1, elem_classes="studio-stop", min_width=60)
            styles_panel(registry, shared, prompt, negative_prompt)
            with gr.Row(equal_height=True):
                model = model_dropdown(registry, shared, scale=4)
                scheduler = scheduler_dropdown(scale=3)
                schedule_type = schedule_dropdown(scale=3)
            with gr.Row(equal_height=True):
                loras, lora_weight = lora_picker(registry, shared)
                refresh_button = gr.Button("↻ Refresh models", scale=1, min_width=100)
            with gr.Row():
                steps = steps_slider(limits)
                guidance_scale = field_slider(limits.min_guidance, limits.max_guidance, value=7.0, step=0.5,
                                             label="CFG scale")
                clip_skip = field_slider(1, MAX_CLIP_SKIP, value=1, step=1, label="Clip skip", min_width=160,
                                         info="SDXL ignores it, as A1111 does")
            with gr.Row(equal_height=True):
                width = _size_slider("Width", limits, limits.default_width)
                swap = gr.Button("⇄", elem_classes="studio-tool-button", scale=0, min_width=40)
                height = _size_slider("Height", limits, limits.default_height)
                aspect = gr.Dropdown(preset_choices(limits), value=None, label="Aspect ratio", scale=2,
                                     info="sizes for this model")
            with gr.Row(equal_height=True):
                seed = seed_number(info="-1 = random; ⚄ random, ♻ last seed", scale=3)
                random_seed = gr.Button("⚄", elem_classes="studio-tool-button", scale=0, min_width=40)
                reuse_seed = gr.Button("♻", elem_classes="studio-tool-button", scale=0, min_width=40)
                num_images = field_slider(limits.min_images, limits.max_images, value=1, step=1,
                                         label="Batch size", info="images per run", scale=3)
                batch_count = field_slider(1, MAX_BATCH_COUNT, value=1, step=1, label="Batch count",
                                          info="runs, one after another", scale=3)
            with gr.Accordion("Variation seed", open=False):
                with gr.Row(equal_height=True):
                    variation_seed = seed_number("Variation seed", info="-1 = random", scale=2)
                    variation_strength = field_slider(0.0, 1.0, value=0.0, step=0.01, label="Variation strength",
                                                     info="0: the seed's own picture; 1: the variation seed's",
                                                     scale=3)
            hires = hires_widgets(limits)
            with gr.Accordion("Speed", open=False):
                step_cache = step_cache_slider()
            gr.Examples(examples=[[text] for text in EXAMPLE_PROMPTS], inputs=[prompt],
                        label="Example prompts for the shapes model")
        with gr.Column(scale=6):
            progress = gr.HTML(progress_html(0, 0, "Ready"), show_label=False, padding=False)
            gallery = gr.Gallery(label="Images", format="png", columns=2, height=620, object_fit="contain",
                                 elem_classes="studio-fit-620",
                                 buttons=["download", "fullscreen"], interactive=False)
            send_to_buttons(shared, TAB, selected)
            info = gr.Textbox(label="Parameters", lines=4, interactive=False, buttons=["copy"],
                              elem_classes="studio-parameters")

    form = {"prompt": prompt, "negative_prompt": negative_prompt, "model": model, "scheduler": scheduler,
            "steps": steps, "guidance_scale": guidance_scale, "width": width, "height": height,
            "seed": seed, "num_images": num_images, "loras": loras, "lora_weight": lora_weight,
            "batch_count": batch_count, "variation_seed": variation_seed, "variation_strength": variation_strength,
            "schedule_type": schedule_type, "clip_skip": clip_skip, **hires,
            "step_cache": step_cache}
    shared.txt2img_form.update(form)
    shared.refresh_buttons.append(refresh_button)
    prepare, ready, busy = run_controls(shared, TAB, run_button=generate_button, stop_button=stop_button,
                                  skip_button=skip_button, progress=progress)

    @GPU(duration=120)
    def generate(request: gr.Request, **values):
        def run():
            yield {progress: progress_html(0, 1, "Starting: checking the settings, loading the model…"),
                   generate_button: busy()}
            require_prompt(values.get("prompt"))
            checked = checked_request(registry, **values)
            result, stopped = yield from streamed_generation(
                registry, checked, progress=progress, gallery=gallery, loading=f"Loading {checked.model}…",
                shared=shared, key=run_key(request, TAB), user=shared.user_of(request))
            if result is None:
                yield {progress: progress_html(0, 1, "Stopped before it started"), generate_button: ready()}
                return
            entries = send_payloads(result, shared.show)
            update = {gallery: gallery_entries(result, shared.show), info: summary(result),
                      progress: done_html(result, stopped), generate_button: ready(), payloads: entries,
                      selected: entries[0] if entries else None}
            if result.items:
                update[last_seed] = result.seeds[0]
            yield update

        yield from ending_with({generate_button: ready(), progress: progress_html(0, 0, "Ready")}, run())

    gr.on([generate_button.click, prompt.submit], prepare, outputs=[generate_button, progress], queue=False,
          api_visibility="private").then(
        generate, inputs_kwargs=form, outputs=[gallery, info, progress, last_seed, generate_button, payloads, selected],
        **queue_status_on(progress), api_name="txt2img_live", api_visibility="undocumented",
        **shared.generation_options())
    hint_steps_for(scheduler, steps)
    wire_embedding_pickers(registry, embeddings, (prompt, negative_prompt), model, refresh_button)

    def choose(entries, event: gr.SelectData):
        return entries[event.index] if entries and 0 <= event.index < len(entries) else gr.skip()

    gallery.select(choose, inputs=payloads, outputs=selected, queue=False, api_visibility="private")
    random_seed.click(lambda: -1, outputs=seed, queue=False, api_visibility="private")

    def reuse(previous):
        if previous is None:
            gr.Warning("No image generated yet: nothing to reuse.")
            return gr.skip()
        return previous

    # Queued (with no limit of its own): only queued events can show a toast in the browser.
    reuse_seed.click(reuse, inputs=last_seed, outputs=seed, api_visibility="private", concurrency_limit=None)
    swap.click(lambda w, h: (h, w), inputs=[width, height], outputs=[width, height], queue=False,
               api_visibility="private")

    def use_preset(choice):
        if not choice:
            return gr.skip(), gr.skip()
        w, h = (int(side) for side in choice.split("x"))
        return w, h

    aspect.input(use_preset, inputs=aspect, outputs=[width, height], queue=False, api_visibility="private")
    model.change(lambda chosen, w, h: _settings_for_model(registry, chosen, w, h),
                 inputs=[model, width, height], outputs=[width, height, steps, num_images, aspect], queue=False,
                 api_visibility="private")
    remember_form(registry, shared, form, restore_settings)
    register_receiver(shared, Receiver(TAB, TITLE, list(form.values()), lambda payload: _fill(registry, form, payload)))


def _fill(registry, form: dict, payload: dict) -> dict:
    from studio.tabs.png_info import form_updates

    return form_updates(registry, form, payload.get("settings") or {})

"""Adapters: draw or upload a condition (sketch, edges, depth, ...), see its map, generate with T2I-Adapters.

Up to two conditions, each with its own weight, combine (MultiAdapter). The live handler streams progress
and previews and stops on Stop; `/adapter` and `/preprocess` are plain API endpoints with named
parameters for gradio_client.
"""
from __future__ import annotations

import gradio as gr

from pipelines.adapters import preprocess_image
from pipelines.families import get_family
from pipelines.requests import InvalidRequest
from studio.adapter_form import SLOT_FIELDS, api_input, parse_options, slot_input
from studio.adapter_widgets import build_slot, kind_updates
from studio.fields import field_slider, seed_number
from studio.forms import as_choice, as_int, as_text, lora_strings
from studio.results import (done_html, gallery_entries, progress_html, queue_status_on, send_payloads,
                            summary)
from studio.send_to import Receiver, register_receiver, send_to_buttons
from studio.sessions import run_key
from studio.mode_widgets import follow_model
from studio.spaces_gpu import GPU
from studio.widgets import (DEFAULT_SCHEDULER, checked_request, ending_with, hint_steps_for, lora_picker,
                            model_dropdown, require_prompt, run_controls, schedule_dropdown, scheduler_dropdown,
                            steps_slider, streamed_generation, user_error)
from studio.uploads import uploaded_image

TITLE = "Adapters"
TAB = "adapters"
REQUEST_FIELDS = ("prompt", "negative_prompt", "model", "scheduler", "schedule_type", "steps", "guidance_scale",
                  "width", "height", "seed", "num_images", "adapter_conditioning_factor")
PICKER_FIELDS = ("loras", "lora_weight")  # the UI's LoRA picker; `/adapter` takes "KEY[:WEIGHT]" strings


def _family(registry, model: str) -> str | None:
    try:
        return registry.model_info(model).family
    except (InvalidRequest, KeyError, ValueError):
        return None  # a half-typed path: generating names the problem


def takes_factor(family: str | None) -> bool:
    """Whether the family's adapter pipeline has a conditioning factor (SDXL's; pipelines/families.py)."""
    return family is not None and get_family(family).adapter_factor


def _conditions(values: dict) -> list:
    """AdapterInputs of the filled slots (the second only when it is switched on)."""
    slots = [{name: values[f"c1_{name}"] for name in SLOT_FIELDS}]
    if values["second"]:
        slots.append({name: values[f"c2_{name}"] for name in SLOT_FIELDS})
    conditions = [condition for condition in map(slot_input, slots) if condition is not None]
    if not conditions:
        raise InvalidRequest("adapters", "draw or upload a picture for at least one condition")
    return conditions


def _checked(registry, values: dict):
    require_prompt(values.get("prompt"))
    try:
        adapters = _conditions(values)
    except InvalidRequest as error:
        raise user_error(str(error)) from None
    fields = {name: values[name] for name in REQUEST_FIELDS + PICKER_FIELDS}
    return checked_request(registry, adapters=adapters, **fields)


def _preview(registry, width, height, **slot) -> tuple:
    """The condition map one slot would feed the adapter, and a note when a fallback ran."""
    try:
        condition = slot_input(slot)
        if condition is None:
            raise InvalidRequest("adapters", "draw or upload a picture first")
        options = dict(condition.options)
        result = preprocess_image(condition.kind, condition.image, as_int("width", width), as_int("height", height),
                                  options.pop("preprocessor", None) or "as-is", options,
                                  depth=registry.depth_estimators())
    except InvalidRequest as error:
        raise user_error(str(error)) from None
    return result.image, gr.Markdown(result.note, visible=bool(result.note))


def build(registry, shared) -> None:
    limits = registry.limits(shared.default_model)
    family = registry.model_info(shared.default_model).family
    payloads, selected = gr.State([]), gr.State(None)  # what each gallery entry (and the chosen one) sends
    with gr.Row(equal_height=False):
        with gr.Column(scale=6):
            prompt = gr.Textbox(label="Prompt", lines=2, elem_classes="studio-prompt",
                                placeholder="Type what the picture should show; the condition below gives its "
                                            "layout. Ctrl+Enter generates, Esc stops.")
            negative_prompt = gr.Textbox(label="Negative prompt", lines=1, placeholder="optional")
            with gr.Row():
                generate_button = gr.Button("Generate", variant="primary", scale=3, elem_classes="studio-generate")
                skip_button = gr.Button("Skip", scale=1, elem_classes="studio-skip", min_width=60)
                stop_button = gr.Button("Stop", variant="stop", scale=1, elem_classes="studio-stop", min_width=60)
            slot1 = build_slot(1, family)
            second = gr.Checkbox(False, label="Add a second condition")
            with gr.Group(visible=False) as second_group:
                slot2 = build_slot(2, family)
            with gr.Accordion("Generation settings", open=False):
                with gr.Row(equal_height=True):
                    model = model_dropdown(registry, shared, scale=4)
                    scheduler = scheduler_dropdown(scale=3)
                    schedule_type = schedule_dropdown(scale=3)
                with gr.Row(equal_height=True):
                    loras, lora_weight = lora_picker(registry, shared)
                with gr.Row():
                    steps = steps_slider(limits)
                    guidance_scale = field_slider(limits.min_guidance, limits.max_guidance, value=7.0, step=0.5,
                                                 label="CFG scale")
                with gr.Row():
                    size = {"minimum": limits.min_size, "maximum": limits.max_size, "step": limits.size_multiple}
                    width = field_slider(value=limits.default_width, label="Width", **size)
                    height = field_slider(value=limits.default_height, label="Height", **size)
                with gr.Row():
                    seed = seed_number("Seed (-1 = random)")
                    num_images = field_slider(limits.min_images, limits.max_images, value=1, step=1, label="Images")
                factor = gr.Slider(0.0, 1.0, value=1.0, step=0.05, label="Adapter conditioning factor (SDXL)",
                                   info="the fraction of the steps that follow the condition",
                                   visible=takes_factor(family))
        with gr.Column(scale=5):
            progress = gr.HTML(progress_html(0, 0, "Ready"), show_label=False, padding=False)
            gallery = gr.Gallery(label="Images", format="png", columns=2, height=480, object_fit="contain",
                                 elem_classes="studio-fit-480",
                                 buttons=["download", "fullscreen"], interactive=False)
            send_to_buttons(shared, TAB, selected)
            maps = gr.Gallery(label="Condition maps used", format="png", columns=2, height=280, object_fit="contain",
                              elem_classes="studio-fit-280",
                              interactive=False)
            info = gr.Textbox(label="Parameters", lines=4, interactive=False, buttons=["copy"],
                              elem_classes="studio-parameters")

    form = {"prompt": prompt, "negative_prompt": negative_prompt, "model": model, "scheduler": scheduler,
            "steps": steps, "guidance_scale": guidance_scale, "width": width, "height": height, "seed": seed,
            "num_images": num_images, "adapter_conditioning_factor": factor, "second": second, "loras": loras,
            "lora_weight": lora_weight, "schedule_type": schedule_type}
    for index, slot in ((1, slot1), (2, slot2)):
        form.update({f"c{index}_{name}": slot[name] for name in SLOT_FIELDS})

    prepare, ready, busy = run_controls(shared, TAB, run_button=generate_button, stop_button=stop_button,
                                  skip_button=skip_button, progress=progress)

    @GPU(duration=120)
    def generate(request: gr.Request, **values):
        def run():
            yield {progress: progress_html(0, 1, "Starting: checking the settings, loading the model…"),
                   generate_button: busy()}
            checked = _checked(registry, values)
            result, stopped = yield from streamed_generation(
                registry, checked, progress=progress, gallery=gallery, shared=shared, key=run_key(request, TAB),
                loading=f"Loading {checked.model} and its adapters…", user=shared.user_of(request))
            if result is None:
                yield {progress: progress_html(0, 1, "Stopped before it started"), generate_button: ready()}
                return
            used = [(image, f"{a.kind} x{a.weight:g}") for image, a in
                    zip(result.items[0].condition_maps, checked.adapters)] if result.items else []
            entries = send_payloads(result, shared.show)
            yield {gallery: gallery_entries(result, shared.show), maps: used, info: summary(result),
                   progress: done_html(result, stopped), generate_button: ready(), payloads: entries,
                   selected: entries[0] if entries else None}

        yield from ending_with({generate_button: ready(), progress: progress_html(0, 0, "Ready")}, run())

    gr.on([generate_button.click, prompt.submit], prepare, outputs=[generate_button, progress], queue=False,
          api_visibility="private").then(
        generate, inputs_kwargs=form, outputs=[gallery, maps, info, progress, generate_button, payloads, selected],
        **queue_status_on(progress), api_name="adapter_live", api_visibility="undocumented",
        **shared.generation_options())
    hint_steps_for(scheduler, steps)

    def choose(entries, event: gr.SelectData):
        return entries[event.index] if entries and 0 <= event.index < len(entries) else gr.skip()

    gallery.select(choose, inputs=payloads, outputs=selected, queue=False, api_visibility="private")

    for slot in (slot1, slot2):
        slot["preview_button"].click(
            lambda **values: _preview(registry, **values),
            inputs_kwargs={"width": width, "height": height, **{name: slot[name] for name in SLOT_FIELDS}},
            outputs=[slot["preview"], slot["note"]], api_visibility="private")
    second.change(lambda on: gr.Group(visible=on), inputs=second, outputs=second_group, queue=False,
                  api_visibility="private")

    def on_model(chosen, kind1, kind2):
        chosen_family = _family(registry, chosen)
        if chosen_family is None:
            return gr.skip(), gr.skip(), gr.skip()
        return (kind_updates(chosen_family, kind1), kind_updates(chosen_family, kind2),
                gr.Slider(visible=takes_factor(chosen_family), value=1.0))

    model.change(on_model, inputs=[model, slot1["kind"], slot2["kind"]],
                 outputs=[slot1["kind"], slot2["kind"], factor], queue=False, api_visibility="private")
    follow_model(registry, model, width, height, steps, num_images)  # the sizes the chosen model takes

    settings_form = {name: form[name] for name in ("prompt", "negative_prompt", "model", "scheduler",
                                                   "schedule_type", "steps", "guidance_scale", "width", "height",
                                                   "seed", "num_images", "loras", "lora_weight")}

    def fill(payload: dict) -> dict:
        """A sent result: its settings, and its picture as condition 1's upload (run through the extractor)."""
        from studio.tabs.png_info import form_updates

        updates = form_updates(registry, settings_form, payload.get("settings") or {})
        if payload.get("image") is not None:
            updates.update({slot1["source"]: "Upload", slot1["upload"]: payload["image"]})
        return updates

    register_receiver(shared, Receiver(TAB, TITLE, [*settings_form.values(), slot1["source"], slot1["upload"]], fill))
    _add_endpoints(registry, shared, limits)


def _add_endpoints(registry, shared, limits) -> None:
    """`/adapter` (generate) and `/preprocess` (see a condition map) with named, typed parameters."""
    from studio.api import result_info

    with gr.Column(visible=False):
        text = lambda name, value="": gr.Textbox(value=value, label=name)  # noqa: E731
        number = lambda name, value, precision=None: gr.Number(value=value, precision=precision, label=name)  # noqa: E731
        form = {"prompt": text("prompt"), "negative_prompt": text("negative_prompt"),
                "model": text("model", shared.default_model), "scheduler": text("scheduler", DEFAULT_SCHEDULER),
                "steps": number("steps", 20, 0), "guidance_scale": number("guidance_scale", 7.0),
                "width": number("width", limits.default_width, 0), "height": number("height", limits.default_height, 0),
                "seed": number("seed", -1, 0), "num_images": number("num_images", 1, 0),
                "adapter_conditioning_factor": number("adapter_conditioning_factor", 1.0)}
        for suffix in ("", "_2"):
            form.update({f"kind{suffix}": text(f"kind{suffix}", "sketch" if not suffix else ""),
                         f"image{suffix}": gr.Image(type="pil", label=f"image{suffix}"),
                         f"weight{suffix}": number(f"weight{suffix}", 1.0),
                         f"preprocess{suffix}": gr.Checkbox(False, label=f"preprocess{suffix}"),
                         f"preprocessor{suffix}": text(f"preprocessor{suffix}"),
                         f"options{suffix}": text(f"options{suffix}")})
        # "KEY_OR_PATH:WEIGHT" strings (weight 1 when left out), as /txt2img takes them; last, for positional callers
        form["loras"] = gr.Dropdown(choices=[], value=[], multiselect=True, allow_custom_value=True, label="loras")
        form["schedule_type"] = text("schedule_type", "Automatic")
        images, maps, info = gr.Gallery(format="png"), gr.Gallery(format="png"), gr.JSON()
        pre = {"kind": text("kind", "sketch"), "image": gr.Image(type="pil", label="image"),
               "width": number("width", limits.default_width, 0), "height": number("height", limits.default_height, 0),
               "preprocessor": text("preprocessor"), "options": text("options")}
        condition_map, note = gr.Image(format="png", type="pil"), gr.Textbox()
        adapter_trigger, preprocess_trigger = gr.Button(), gr.Button()

    @GPU(duration=120)
    def adapter(prompt, negative_prompt, model, scheduler, steps, guidance_scale, width, height, seed, num_images,
                adapter_conditioning_factor, kind, image=None, weight=1.0, preprocess=False, preprocessor="",
                options="", kind_2="", image_2=None, weight_2=1.0, preprocess_2=False, preprocessor_2="",
                options_2="", loras=None, schedule_type="Automatic", caller: gr.Request = None):
        """Generate with one or two conditions; returns the images, the condition maps used and the settings.
        `loras`: e.g. ["my-lora:0.8", "models/ink.safetensors"] (a key or a path, weight 1 when left out)."""
        values = dict(locals())
        user = shared.user_of(caller)
        try:
            lora_pairs = lora_strings(loras)
            for suffix in ("", "_2"):  # the raw upload records (preprocess=False), checked before decoding
                values[f"image{suffix}"] = uploaded_image(f"image{suffix}", values[f"image{suffix}"])
            conditions = [api_input(values[f"kind{s}"], values[f"image{s}"], values[f"weight{s}"],
                                    values[f"preprocess{s}"], values[f"preprocessor{s}"], values[f"options{s}"])
                          for s in ("", "_2") if values[f"kind{s}"]]
            conditions = [c for c in conditions if c is not None]
            if not conditions:
                raise InvalidRequest("adapters", "give at least one condition image")
        except InvalidRequest as error:
            raise user_error(str(error)) from None
        request = checked_request(registry, adapters=conditions, loras=lora_pairs,
                                  **{n: values[n] for n in REQUEST_FIELDS})
        try:
            with shared.device_slots:  # a run left going by a closed tab finishes first
                result = registry.generate(request, user=user)
        except InvalidRequest as error:
            raise user_error(str(error)) from None
        used = list(result.items[0].condition_maps) if result.items else []
        return gallery_entries(result, shared.show), used, result_info(result)

    def preprocess(kind, image=None, width=None, height=None, preprocessor="", options=""):
        """The condition map `preprocessor` (empty: the kind's default) makes of `image`, and a note."""
        try:
            image = uploaded_image("image", image)
            if image is None:
                raise InvalidRequest("image", "an image is required")
            result = preprocess_image(as_choice("kind", kind), image, as_int("width", width), as_int("height", height),
                                      as_text("preprocessor", preprocessor).strip() or None, parse_options(options),
                                      depth=registry.depth_estimators())
        except InvalidRequest as error:
            raise user_error(str(error)) from None
        return result.image, result.note

    # preprocess=False: the handlers get the client's values as sent and name any bad field (studio/uploads.py)
    adapter_trigger.click(adapter, inputs_kwargs=form, outputs=[images, maps, info], api_name="adapter",
                          preprocess=False, **shared.generation_options())
    preprocess_trigger.click(preprocess, inputs_kwargs=pre, outputs=[condition_map, note], api_name="preprocess",
                             preprocess=False)

"""Compare: one prompt and one seed across samplers (columns), optionally across steps or CFG values (rows),
shown as a labelled grid that fills in cell by cell."""
from __future__ import annotations

import gradio as gr

from pipelines import scheduler_names
from pipelines.grid import CellDone, compare_requests, labelled_grid, run_grid
from pipelines.requests import GenerationCancelled, StepUpdate
from studio.fields import field_slider, seed_number
from studio.forms import as_int, build_request, parse_number_list
from studio.results import StepClock, progress_html, queue_status_on
from studio.runner import WorkerRun
from studio.send_to import Receiver, register_receiver, send_to_buttons
from studio.sessions import run_key
from studio.spaces_gpu import GPU
from studio.widgets import (ending_with, live_updates, model_dropdown, run_controls, schedule_dropdown,
                            shown_as_gr_error, user_error)

TITLE = "Compare Samplers"
TAB = "compare"
DEFAULT_SCHEDULERS = ["Euler a", "Euler", "DPM++ 2M", "DDIM", "UniPC", "Heun"]
AXES = {"Samplers only": None, "Steps": "steps", "CFG scale": "guidance_scale"}


def plan(registry, *, prompt, negative_prompt, model, schedulers, steps, guidance_scale, seed, axis,
         axis_values, schedule_type="Automatic") -> tuple[list[list], list[str], list[str]]:
    """Every cell's checked request (rows = the varied setting, columns = samplers), and the labels."""
    if not schedulers:
        raise user_error("schedulers: pick at least one sampler to compare")
    field = AXES.get(axis, "missing")
    if field == "missing":
        raise user_error(f"vary: choose one of {', '.join(AXES)}")
    with shown_as_gr_error():
        values = parse_number_list(field, axis_values, int if field == "steps" else float) if field else []
        seed = as_int("seed", seed)
        limits = registry.limits(model)
    if field and not values:
        raise user_error(f"{field}: list the values to compare, e.g. 10, 20, 30")
    with shown_as_gr_error():
        base = build_request(prompt=prompt, negative_prompt=negative_prompt, model=model, scheduler=schedulers[0],
                             schedule_type=schedule_type, steps=steps, guidance_scale=guidance_scale, seed=seed, num_images=1,
                             width=limits.default_width, height=limits.default_height)
        cells, row_labels, column_labels = compare_requests(
            base, schedulers, steps_values=values if field == "steps" else None,
            guidance_values=values if field == "guidance_scale" else None)
        for row in cells:
            for cell in row:
                registry.validate(cell)
    return cells, row_labels, column_labels


def build(registry, shared) -> None:
    selected = gr.State(None)  # the grid and its settings, for the Send-to buttons
    with gr.Row(equal_height=False):
        with gr.Column(scale=4):
            prompt = gr.Textbox(label="Prompt", lines=2, elem_classes="studio-prompt",
                                value="a large red circle in the top left on a blue background")
            negative_prompt = gr.Textbox(label="Negative prompt", lines=1)
            with gr.Row():
                compare_button = gr.Button("Compare", variant="primary", scale=3, elem_classes="studio-generate")
                stop_button = gr.Button("Stop", variant="stop", scale=1, elem_classes="studio-stop")
            model = model_dropdown(registry, shared)
            schedulers = gr.Dropdown(scheduler_names(), value=DEFAULT_SCHEDULERS, multiselect=True,
                                     label="Samplers (columns)")
            schedule_type = schedule_dropdown(info="for the k-diffusion samplers; DDIM, PLMS, UniPC, DEIS, DDPM "
                                                   "and LCM take none")
            with gr.Row():
                steps = field_slider(1, 150, value=20, step=1, label="Steps")
                guidance_scale = field_slider(0, 30, value=7.0, step=0.5, label="CFG scale")
            seed = seed_number("Seed (-1 = pick one for the whole grid)")
            with gr.Row():
                axis = gr.Radio(list(AXES), value="Samplers only", label="Rows vary")
                axis_values = gr.Textbox(label="Values (comma separated)", placeholder="10, 20, 30")
        with gr.Column(scale=6):
            progress = gr.HTML(progress_html(0, 0, "Ready"), show_label=False, padding=False)
            grid_image = gr.Image(label="Comparison grid", format="png", type="pil", interactive=False,
                                  buttons=["download", "fullscreen"], height=640)
            send_to_buttons(shared, TAB, selected)
            info = gr.Textbox(label="Settings", lines=2, interactive=False)
    prepare, ready, busy = run_controls(shared, TAB, run_button=compare_button, stop_button=stop_button,
                                  progress=progress, run_label="Compare")

    @GPU(duration=300)
    def run_comparison(request: gr.Request = None, **values):
        def run():
            yield {compare_button: busy()}
            cells, row_labels, column_labels = plan(registry, **values)
            images = [[None] * len(column_labels) for _ in row_labels]
            count, seed = len(row_labels) * len(column_labels), cells[0][0].seed

            def note(index: int) -> str:
                r, c = divmod(index, len(column_labels))
                return f"Image {index + 1} / {count}: {column_labels[c]} {row_labels[r]}".strip()

            def work(emit, should_stop):
                return run_grid(registry, cells, row_labels, column_labels, on_step=emit, should_stop=should_stop,
                                on_cell=emit, user=shared.user_of(request))

            grid, finished, steps_before, clock = None, 0, 0, StepClock()  # StepUpdates count the whole grid
            waiting = {progress: progress_html(0, count, note(0))}
            yield waiting
            job = WorkerRun(work, slots=shared.device_slots)
            if not shared.runs.start(run_key(request, TAB), job):
                yield {progress: progress_html(0, 1, "Stopped before it started"), compare_button: ready()}
                return
            stopped = False
            try:
                for event in live_updates(job):
                    if isinstance(event, CellDone):
                        images[event.row][event.column] = event.result.images[0]
                        finished, steps_before = finished + 1, steps_before + event.result.request.steps
                        grid = labelled_grid(images, row_labels, column_labels)
                        waiting = {progress: progress_html(finished, count, note(min(finished, count - 1)))}
                        yield {grid_image: grid, **waiting}
                    elif isinstance(event, StepUpdate):
                        clock.update(event.step, event.total)
                        speed = clock.speed()
                        label = f"{note(finished)} - step {event.step - steps_before}"
                        label += f" · {speed}" if speed else ""
                        yield {progress: progress_html(event.step, event.total, label)}
                    else:  # still loading: yield, so a closed tab is noticed
                        yield waiting
            except GenerationCancelled:
                stopped = True
            base = cells[0][0].to_json_dict()
            done = (f"Stopped: {finished} of {count} images made, seed {seed}" if stopped
                    else f"Done: {count} images, seed {seed}")
            yield {grid_image: grid, progress: progress_html(0 if stopped else 1, 1, done), compare_button: ready(),
                   info: f"{cells[0][0].prompt}\nSeed: {seed}, model: {cells[0][0].model}",
                   selected: {"image": grid, "settings": base} if grid is not None else None}

        yield from ending_with({compare_button: ready(), progress: progress_html(0, 0, "Ready")}, run())

    inputs = {"prompt": prompt, "negative_prompt": negative_prompt, "model": model, "schedulers": schedulers,
              "steps": steps, "guidance_scale": guidance_scale, "seed": seed, "axis": axis,
              "axis_values": axis_values, "schedule_type": schedule_type}
    compare_button.click(prepare, outputs=[compare_button, progress], queue=False, api_visibility="private").then(
        run_comparison, inputs_kwargs=inputs, outputs=[grid_image, info, progress, compare_button, selected],
        **queue_status_on(progress), api_name="compare", api_visibility="undocumented",
        **shared.generation_options())

    def fill(payload: dict) -> dict:
        settings = payload.get("settings") or {}
        fields = {"prompt": prompt, "negative_prompt": negative_prompt, "steps": steps,
                  "guidance_scale": guidance_scale, "seed": seed}
        updates = {component: settings[name] for name, component in fields.items() if name in settings}
        if settings.get("model") in registry.model_names():
            updates[model] = settings["model"]
        if settings.get("scheduler") in scheduler_names():
            chosen = settings["scheduler"]
            updates[schedulers] = [chosen, *[name for name in DEFAULT_SCHEDULERS if name != chosen]]
            updates[schedule_type] = settings.get("schedule_type", "Automatic")
        return updates

    register_receiver(shared, Receiver(TAB, TITLE, [prompt, negative_prompt, steps, guidance_scale, seed, model,
                                                    schedulers, schedule_type], fill))

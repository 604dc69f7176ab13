"""Compare: one prompt and one seed across samplers (columns), optionally across steps or CFG values (rows),
shown as a labelled grid that fills in cell by cell."""
from __future__ import annotations

from contextlib import closing

import gradio as gr

from pipelines import scheduler_names
from pipelines.grid import CellDone, compare_requests, labelled_grid, run_grid
from pipelines.requests import StepUpdate
from studio.forms import as_int, build_request, parse_number_list
from studio.results import progress_html, queue_status_on
from studio.runner import WorkerRun
from studio.spaces_gpu import GPU
from studio.widgets import live_updates, model_dropdown, shown_as_gr_error, stop_with

TITLE = "Compare Samplers"
DEFAULT_SCHEDULERS = ["Euler a", "Euler", "DPM++ 2M Karras", "DDIM", "UniPC", "Heun"]
AXES = {"Samplers only": None, "Steps": "steps", "CFG scale": "guidance_scale"}


def plan(registry, *, prompt, negative_prompt, model, schedulers, steps, guidance_scale, seed, axis,
         axis_values) -> tuple[list[list], list[str], list[str]]:
    """Every cell's checked request (rows = the varied setting, columns = samplers), and the labels."""
    if not schedulers:
        raise gr.Error("Pick at least one sampler to compare.", title="Invalid setting")
    field = AXES.get(axis, "missing")
    if field == "missing":
        raise gr.Error(f"vary: choose one of {', '.join(AXES)}", title="Invalid setting")
    with shown_as_gr_error():
        values = parse_number_list(field, axis_values, int if field == "steps" else float) if field else []
        seed = as_int("seed", seed)
        limits = registry.limits(model)
    if field and not values:
        raise gr.Error(f"{field}: list the values to compare, e.g. 10, 20, 30", title="Invalid setting")
    with shown_as_gr_error():
        base = build_request(prompt=prompt, negative_prompt=negative_prompt, model=model, scheduler=schedulers[0],
                             steps=steps, guidance_scale=guidance_scale, seed=seed, num_images=1,
                             width=limits.default_width, height=limits.default_height)
        cells, row_labels, column_labels = compare_requests(
            base, schedulers, steps_values=values if field == "steps" else None,
            guidance_values=values if field == "guidance_scale" else None)
        for row in cells:
            for cell in row:
                registry.validate(cell)
    return cells, row_labels, column_labels


def build(registry, shared) -> None:
    with gr.Row(equal_height=False):
        with gr.Column(scale=4):
            prompt = gr.Textbox(label="Prompt", lines=2,
                                value="a large red circle in the top left on a blue background")
            negative_prompt = gr.Textbox(label="Negative prompt", lines=1)
            with gr.Row():
                compare_button = gr.Button("Compare", variant="primary", scale=3)
                stop_button = gr.Button("Stop", variant="stop", scale=1)
            model = model_dropdown(registry, shared)
            schedulers = gr.Dropdown(scheduler_names(), value=DEFAULT_SCHEDULERS, multiselect=True,
                                     label="Samplers (columns)")
            with gr.Row():
                steps = gr.Slider(1, 150, value=20, step=1, label="Steps")
                guidance_scale = gr.Slider(0, 30, value=7.0, step=0.5, label="CFG scale")
            seed = gr.Number(value=-1, precision=0, label="Seed (-1 = pick one for the whole grid)")
            with gr.Row():
                axis = gr.Radio(list(AXES), value="Samplers only", label="Rows vary")
                axis_values = gr.Textbox(label="Values (comma separated)", placeholder="10, 20, 30")
        with gr.Column(scale=6):
            progress = gr.HTML(progress_html(0, 0, "Ready"), show_label=False, padding=False)
            grid_image = gr.Image(label="Comparison grid", format="png", type="pil", interactive=False,
                                  buttons=["download", "fullscreen"], height=640)
            info = gr.Textbox(label="Settings", lines=2, interactive=False)

    @GPU(duration=300)
    def run_comparison(**values):
        cells, row_labels, column_labels = plan(registry, **values)
        images = [[None] * len(column_labels) for _ in row_labels]
        count, seed = len(row_labels) * len(column_labels), cells[0][0].seed

        def note(index: int) -> str:
            r, c = divmod(index, len(column_labels))
            return f"Image {index + 1} / {count}: {column_labels[c]} {row_labels[r]}".strip()

        def work(emit, should_stop):
            return run_grid(registry, cells, row_labels, column_labels, on_step=emit, should_stop=should_stop,
                            on_cell=emit)

        grid, finished, steps_before = None, 0, 0  # cells made, their steps (StepUpdates count the whole grid)
        waiting = {progress: progress_html(0, count, note(0))}
        yield waiting
        with closing(live_updates(WorkerRun(work))) as events:
            for event in events:
                if isinstance(event, CellDone):
                    images[event.row][event.column] = event.result.images[0]
                    finished, steps_before = finished + 1, steps_before + event.result.request.steps
                    grid = labelled_grid(images, row_labels, column_labels)
                    waiting = {progress: progress_html(finished, count, note(min(finished, count - 1)))}
                    yield {grid_image: grid, **waiting}
                elif isinstance(event, StepUpdate):
                    label = f"{note(finished)} - step {event.step - steps_before}"
                    yield {progress: progress_html(event.step, event.total, label)}
                else:  # still loading: yield, so that Stop can end the handler
                    yield waiting
        yield {grid_image: grid, progress: progress_html(1, 1, f"Done: {count} images, seed {seed}"),
               info: f"{cells[0][0].prompt}\nSeed: {seed}, model: {cells[0][0].model}"}

    inputs = {"prompt": prompt, "negative_prompt": negative_prompt, "model": model, "schedulers": schedulers,
              "steps": steps, "guidance_scale": guidance_scale, "seed": seed, "axis": axis,
              "axis_values": axis_values}
    run_event = compare_button.click(run_comparison, inputs_kwargs=inputs, outputs=[grid_image, info, progress],
                                     **queue_status_on(progress), api_name="compare", api_visibility="undocumented",
                                     **shared.generation_options())
    stop_with(stop_button, run_event, progress)

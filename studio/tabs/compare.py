"""Compare: one prompt and one seed across samplers (columns), optionally across steps or CFG values (rows),
shown as a labelled grid that fills in cell by cell."""
from __future__ import annotations

import random

import gradio as gr

from pipelines import scheduler_names
from studio.forms import as_int, parse_number_list
from studio.grid import labelled_grid
from studio.results import progress_html
from studio.spaces_gpu import GPU
from studio.widgets import checked_request, live_run, model_dropdown, shown_as_gr_error

TITLE = "Compare Samplers"
DEFAULT_SCHEDULERS = ["Euler a", "Euler", "DPM++ 2M Karras", "DDIM", "UniPC", "Heun"]
AXES = {"Samplers only": None, "Steps": "steps", "CFG scale": "guidance_scale"}
MAX_CELLS = 48


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
    if len(schedulers) * max(1, len(values)) > MAX_CELLS:
        raise gr.Error(f"At most {MAX_CELLS} images per comparison; got {len(schedulers)} samplers x "
                       f"{len(values)} values.", title="Invalid setting")
    if seed == -1:  # one seed for the whole grid, or the comparison would mean nothing
        seed = random.SystemRandom().randint(0, limits.max_seed)
    base = {"prompt": prompt, "negative_prompt": negative_prompt, "model": model, "steps": steps,
            "guidance_scale": guidance_scale, "seed": seed, "num_images": 1,
            "width": limits.default_width, "height": limits.default_height}
    rows = [{field: value} for value in values] if field else [{}]
    labels = [f"{'steps' if field == 'steps' else 'CFG'} {value:g}" for value in values] if field else [""]
    cells = [[checked_request(registry, **{**base, **row, "scheduler": name}) for name in schedulers]
             for row in rows]
    return cells, labels, list(schedulers)


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
        count = len(row_labels) * len(column_labels)
        seed = cells[0][0].seed
        for index in range(count):
            r, c = divmod(index, len(column_labels))
            request = cells[r][c]
            note = f"{column_labels[c]} {row_labels[r]}".strip()
            yield {progress: progress_html(index, count, f"Image {index + 1} / {count}: {note}")}
            runner = live_run(registry, request)
            while True:
                try:
                    update = next(runner)
                except StopIteration as finished:
                    images[r][c] = finished.value.images[0]
                    break
                if update is not None:
                    done = index + update.step / update.total
                    yield {progress: progress_html(round(100 * done), 100 * count,
                                                   f"Image {index + 1} / {count}: {note} - step {update.step}")}
            grid = labelled_grid(images, row_labels, column_labels)
            yield {grid_image: grid}
        yield {grid_image: grid, progress: progress_html(1, 1, f"Done: {count} images, seed {seed}"),
               info: f"{cells[0][0].prompt}\nSeed: {seed}, model: {cells[0][0].model}"}

    inputs = {"prompt": prompt, "negative_prompt": negative_prompt, "model": model, "schedulers": schedulers,
              "steps": steps, "guidance_scale": guidance_scale, "seed": seed, "axis": axis,
              "axis_values": axis_values}
    run_event = compare_button.click(run_comparison, inputs_kwargs=inputs, outputs=[grid_image, info, progress],
                                     show_progress="hidden", api_name="compare", api_visibility="undocumented",
                                     **shared.generation_options())
    stop_button.click(None, cancels=[run_event])
    stop_button.click(lambda: progress_html(0, 1, "Stopped"), outputs=progress, queue=False,
                      api_visibility="private")

"""Widgets and handler pieces the tabs share: model/LoRA/scheduler pickers, checked requests, live runs."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import gradio as gr

from pipelines import scheduler_names, suggested_steps
from pipelines.requests import GenerationRequest, InvalidRequest, StepUpdate
from pipelines.validation import MAX_LORA_WEIGHT
from studio.forms import build_request
from studio.results import progress_html
from studio.runner import GenerationRun, WorkerRun

DEFAULT_SCHEDULER = "Euler a"
HEARTBEAT_SECONDS = 0.5  # how often a waiting handler yields, so Stop works while a model loads


def with_trigger_words(label: str, words) -> str:
    """A picker label that shows what to write in the prompt for a tuned model or LoRA."""
    return f"{label} · trigger: {', '.join(words)}" if words else label


def model_choices(registry) -> list[tuple[str, str]]:
    """(label, key) pairs; a model whose weights are not here says so (`python -m studio models` says how),
    and a tuned one shows its trigger words."""
    choices = []
    for key in registry.model_names():
        info = registry.model_info(key)
        label = key if info.available else f"{key} (not downloaded)"
        choices.append((with_trigger_words(label, info.trigger_words), key))
    return choices


def model_dropdown(registry, shared, **options) -> gr.Dropdown:
    """A model picker (a key, or a typed path to a model folder/file) kept in sync by the refresh button."""
    dropdown = gr.Dropdown(choices=model_choices(registry), value=shared.default_model, label="Model",
                           allow_custom_value=True, filterable=True, **options)
    shared.model_dropdowns.append(dropdown)
    return dropdown


def lora_choices(registry) -> list[tuple[str, str]]:
    """(label, key) pairs of the models folder's LoRAs; the label names the model a LoRA was made for."""
    choices = []
    for key in registry.lora_names():
        info = registry.lora_info(key)
        label = f"{key} (for {info.base})" if info.base else key
        choices.append((with_trigger_words(label, info.trigger_words), key))
    return choices


def lora_picker(registry, shared) -> tuple[gr.Dropdown, gr.Slider]:
    """LoRAs to apply (keys, or typed paths) and one weight for each of them; refreshed with the models.
    They reach the request as the form fields `loras` and `lora_weight` (see studio.forms.build_request)."""
    names = gr.Dropdown(choices=lora_choices(registry), value=[], multiselect=True, allow_custom_value=True,
                        filterable=True, label="LoRAs", scale=4,
                        info="from the models folder, or a typed path; put a LoRA's trigger words (shown in the list) in the prompt")
    # min_width: narrower, the slider's number box and reset button overflow into a scrollbar.
    weight = gr.Slider(-MAX_LORA_WEIGHT, MAX_LORA_WEIGHT, value=1.0, step=0.05, label="LoRA weight", scale=2,
                       min_width=220, info="applied to each chosen LoRA")
    shared.lora_dropdowns.append(names)
    return names, weight


def scheduler_dropdown(**options) -> gr.Dropdown:
    return gr.Dropdown(choices=scheduler_names(), value=DEFAULT_SCHEDULER, label="Sampler (scheduler)",
                       filterable=True, **options)


def steps_hint(scheduler: str) -> str:
    return f"suggested for {scheduler}: {suggested_steps(scheduler)}"


def steps_slider(limits) -> gr.Slider:
    return gr.Slider(limits.min_steps, limits.max_steps, value=suggested_steps(DEFAULT_SCHEDULER), step=1,
                     label="Steps", info=steps_hint(DEFAULT_SCHEDULER))


def step_cache_slider() -> gr.Slider:
    from pipelines.fast.step_cache import MAX_INTERVAL

    return gr.Slider(0, MAX_INTERVAL, value=0, step=1, label="Step cache",
                     info="0: off. N: the UNet's deep features are recomputed every N-th step below the top 30% "
                          "of the noise (faster; 2-3 keep most of the quality)")


def hint_steps_for(scheduler: gr.Dropdown, steps: gr.Slider) -> None:
    """The steps slider names the chosen sampler's suggested step count; the value stays the user's."""
    def show_suggested_steps(name: str) -> dict:
        return gr.update(info=steps_hint(name))  # an update of `info` alone: a Slider would reset the value

    scheduler.change(show_suggested_steps, inputs=scheduler, outputs=steps, queue=False, api_visibility="private")


def refresh_models(registry, shared) -> dict:
    """Rescan the models folder and give every model and LoRA picker the new lists (keeping their values)."""
    registry.refresh()
    models, loras = model_choices(registry), lora_choices(registry)
    updates = {dropdown: gr.Dropdown(choices=models) for dropdown in shared.model_dropdowns}
    updates.update({dropdown: gr.Dropdown(choices=loras) for dropdown in shared.lora_dropdowns})
    return updates


def refresh_handler(registry, shared):
    """An event handler that refreshes the pickers; wire it with `outputs=shared.pickers()`."""
    def refresh_pickers() -> dict:
        return refresh_models(registry, shared)

    return refresh_pickers


@contextmanager
def shown_as_gr_error():
    """An InvalidRequest inside (from the forms or the engine) reaches the user as a gr.Error, message intact."""
    try:
        yield
    except InvalidRequest as error:
        raise gr.Error(str(error), title="Invalid setting") from None


def checked_request(registry, **values) -> GenerationRequest:
    """Widget values -> a request the engine accepts; any problem becomes a gr.Error naming the field."""
    with shown_as_gr_error():
        request = build_request(**values)
        registry.validate(request)
    return request


def stop_with(stop_button: gr.Button, run_event, progress: gr.HTML) -> None:
    """Stop cancels the run (its handler is closed, so the worker stops at its next step) and says so on
    the progress bar, which would otherwise stay where the run was."""
    stop_button.click(None, cancels=[run_event])
    stop_button.click(lambda: progress_html(0, 1, "Stopped"), outputs=progress, queue=False,
                      api_visibility="private")


def preview_interval(steps: int) -> int:
    """A preview about every tenth of the run: live enough, without flooding the browser."""
    return max(1, round(steps / 10))


def live_updates(run: WorkerRun) -> Iterator[object | None]:
    """The events of `run`, started here (None while waiting: yield something then).

    Closing this generator (Gradio does when the user presses Stop) stops the work at its next check.
    Returns the work's result (StopIteration.value; use `result = yield from live_updates(...)`); an
    InvalidRequest from the work reaches the user as a gr.Error.
    """
    with shown_as_gr_error():
        with run:
            yield from run.updates(heartbeat=HEARTBEAT_SECONDS)
        return run.result


def live_run(registry, request: GenerationRequest) -> Iterator[StepUpdate | None]:
    """Step updates of a generation in a worker thread; returns its GenerationResult (see live_updates)."""
    return (yield from live_updates(GenerationRun(registry.generate, request, preview_interval(request.steps))))


def streamed_generation(registry, request: GenerationRequest, *, progress: gr.HTML, gallery: gr.Gallery,
                        loading: str) -> Iterator[dict]:
    """What a generating tab shows while `request` runs: `loading` until the first step, then a progress bar
    per step and the live preview in `gallery`. Yields Gradio updates; returns the GenerationResult
    (`result = yield from streamed_generation(...)`)."""
    waiting = {progress: progress_html(0, request.steps, loading)}
    yield waiting
    runner = live_run(registry, request)
    try:
        while True:
            try:
                update = next(runner)
            except StopIteration as finished:
                return finished.value
            if update is None:
                yield waiting
                continue
            step = {progress: progress_html(update.step, update.total)}
            if update.preview is not None:
                step[gallery] = [(update.preview, f"step {update.step} / {update.total}")]
            yield step
    finally:
        runner.close()  # on Stop: ends the run now, not when the garbage collector gets to it

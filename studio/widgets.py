"""Widgets and handler pieces the tabs share: model/LoRA/scheduler pickers, checked requests, live runs
with Generate / Skip / Stop."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Callable, Iterator, NamedTuple

import gradio as gr

from pipelines import schedule_type_names, scheduler_names, suggested_steps
from pipelines.requests import GenerationCancelled, GenerationRequest, InvalidRequest, StepUpdate
from pipelines.validation import MAX_LORA_WEIGHT
from studio.fields import field_slider
from studio.forms import build_request
from studio.results import StepClock, progress_html
from studio.runner import DeviceBusy, GenerationRun, WorkerRun
from studio.sessions import run_key

DEFAULT_SCHEDULER = "Euler a"
HEARTBEAT_SECONDS = 0.5  # how often a waiting handler yields, so a closed tab is noticed while a model loads
log = logging.getLogger("studio")


def user_error(message: str, title: str = "Invalid setting") -> gr.Error:
    """A gr.Error for something the user can fix: one line in the server log, no traceback."""
    log.warning("%s: %s", title, message)
    return gr.Error(message, title=title, print_exception=False)


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
    weight = field_slider(-MAX_LORA_WEIGHT, MAX_LORA_WEIGHT, value=1.0, step=0.05, label="LoRA weight", scale=2,
                         min_width=220, info="applied to each chosen LoRA")
    shared.lora_dropdowns.append(names)
    return names, weight


def scheduler_dropdown(**options) -> gr.Dropdown:
    return gr.Dropdown(choices=scheduler_names(), value=DEFAULT_SCHEDULER, label="Sampler (scheduler)",
                       filterable=True, **options)


def schedule_dropdown(**options) -> gr.Dropdown:
    options.setdefault("info", "Automatic: the sampler's own (as in AUTOMATIC1111)")
    return gr.Dropdown(choices=schedule_type_names(), value="Automatic", label="Schedule type", **options)


def steps_hint(scheduler: str) -> str:
    return f"suggested for {scheduler}: {suggested_steps(scheduler)}"


def steps_slider(limits) -> gr.Slider:
    return field_slider(limits.min_steps, limits.max_steps, value=suggested_steps(DEFAULT_SCHEDULER), step=1,
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


def refresh_models(registry, shared, rescan: bool = True) -> dict:
    """Give every model and LoRA picker the registry's lists (keeping their values); `rescan` first looks
    at the models folder again."""
    if rescan:
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
        raise user_error(str(error)) from None


def checked_request(registry, **values) -> GenerationRequest:
    """Widget values -> a request the engine accepts; any problem becomes a gr.Error naming the field."""
    with shown_as_gr_error():
        request = build_request(**values)
        registry.validate(request)
    return request


def require_prompt(prompt) -> None:
    """The UI refuses an empty prompt (the API takes one): the grey example text is not a prompt."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise user_error("prompt: it is empty; type what the picture should show (the grey text is only a hint; "
                         "the examples under the form fill it in)")


def preview_interval(steps: int) -> int:
    """A preview about every tenth of the run: live enough, without flooding the browser."""
    return max(1, round(steps / 10))


def live_updates(run: WorkerRun) -> Iterator[object | None]:
    """The events of `run`, started here (None while waiting: yield something then).

    Returns the work's result (StopIteration.value; use `result = yield from live_updates(...)`); an
    InvalidRequest from the work reaches the user as a gr.Error. Closing this generator leaves the work
    running to its end (see studio.runner); `run.stop()` stops it.
    """
    with shown_as_gr_error():
        with run:
            yield from run.updates(heartbeat=HEARTBEAT_SECONDS)
        return run.result


def streamed_generation(registry, request: GenerationRequest, *, progress: gr.HTML, gallery: gr.Gallery,
                        loading: str, shared=None, key=None, user: str | None = None) -> Iterator[dict]:
    """What a generating tab shows while `request` runs: `loading` until the first step, then a progress bar
    with speed and time left, and the live preview in `gallery`. The run is filed under `key` in
    `shared.runs`, so that tab's Stop and Skip reach it.

    Yields Gradio updates; returns (GenerationResult, stopped): with Stop, the images finished before it.
    """
    images = request.batch_count * request.num_images
    waiting = {progress: progress_html(0, images * request.steps, loading)}
    yield waiting
    run = GenerationRun(registry.generate, request, preview_interval(request.steps), user=user,
                        slots=shared.device_slots if shared is not None else None)
    if shared is not None and not shared.runs.start(key, run):
        return None, True  # Stop was pressed while it waited in the queue
    clock = StepClock()
    try:
        for update in live_updates(run):
            if run.stopping:  # the run's own bar says so (a Stop handler's answer could arrive after its end)
                yield {progress: progress_html(clock.step, clock.total or 1, "Stopping after the current step…")}
            elif isinstance(update, StepUpdate):
                clock.update(update.step, update.total)
                shown = {progress: clock.html(request.steps if images > 1 else None)}
                if update.preview is not None:
                    shown[gallery] = [(update.preview, f"step {update.step} / {update.total}")]
                yield shown
            elif isinstance(update, DeviceBusy):
                waiting = {progress: progress_html(0, 1, "Waiting for the device: an earlier run is finishing…")}
                yield waiting
            elif clock.step:  # a slow step: keep the bar where it is (the time left still counts down)
                yield {progress: clock.html(request.steps if images > 1 else None)}
            else:
                yield waiting
    except GenerationCancelled as stopped:
        return stopped.partial, True
    return run.result, False


def ending_with(final: dict, handler: Iterator[dict]) -> Iterator[dict]:
    """Run a handler generator; if it fails, show `final` (e.g. Generate enabled again), then the error."""
    try:
        yield from handler
    except Exception:
        yield final
        raise


class RunControls(NamedTuple):
    prepare: Callable
    ready: Callable[[], dict]  # the run button's update when a run ends
    busy: Callable[[], dict]  # ... and while it runs


def run_controls(shared, tab: str, *, run_button: gr.Button, stop_button: gr.Button, progress: gr.HTML,
                 skip_button: gr.Button | None = None, run_label: str = "Generate"):
    """Wire Stop (and Skip) of `tab` to the run its browser tab started. Returns RunControls: `prepare`, the
    first step of the run event (it files the run as queued and disables `run_button`), and the button
    updates `busy` (what the run's handler shows first) and `ready` (what it shows when it ends).

    Stop and Skip are plain, unqueued events with API names `/<tab>_stop` and `/<tab>_skip`, so they act
    at once, even with the queue full, and only on the caller's own session. A running run's own handler
    shows that it is stopping: an answer from here could reach the page after the run's last word.
    """
    # Fresh dicts each time: Gradio consumes an update dict as it applies it.
    def busy() -> dict:
        return gr.update(value=f"{run_label} (running…)", interactive=False)

    def ready() -> dict:
        return gr.update(value=run_label, interactive=True)

    def prepare(request: gr.Request):
        shared.runs.queued(run_key(request, tab))
        return busy(), progress_html(0, 1, "Queued: waiting for its turn…")

    def stop(request: gr.Request):
        state = shared.runs.stop(run_key(request, tab))
        if state == "running":
            return gr.skip(), gr.skip()
        note = "Stopped before it started" if state == "queued" else "Nothing is running"
        return ready(), progress_html(0, 1, note)

    stop_button.click(stop, outputs=[run_button, progress], queue=False, api_name=f"{tab}_stop",
                      api_visibility="undocumented")
    if skip_button is not None:
        def skip(request: gr.Request) -> None:
            shared.runs.skip(run_key(request, tab))  # the image ends at its next step; the bar moves on

        skip_button.click(skip, queue=False, api_name=f"{tab}_skip", api_visibility="undocumented")
    return RunControls(prepare, ready, busy)

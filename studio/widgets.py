"""Widgets and handler pieces the tabs share: model/scheduler pickers, checked requests, live runs."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import gradio as gr

from pipelines import scheduler_names
from pipelines.requests import GenerationRequest, InvalidRequest, StepUpdate
from studio.forms import build_request
from studio.runner import GenerationRun

DEFAULT_SCHEDULER = "Euler a"
HEARTBEAT_SECONDS = 0.5  # how often a waiting handler yields, so Stop works while a model loads


def model_choices(registry) -> list[tuple[str, str]]:
    """(label, key) pairs; a model whose weights are not here says so (`python -m studio models` says how)."""
    return [(key if registry.model_info(key).available else f"{key} (not downloaded)", key)
            for key in registry.model_names()]


def model_dropdown(registry, shared, **options) -> gr.Dropdown:
    """A model picker (a key, or a typed path to a model folder/file) kept in sync by the refresh button."""
    dropdown = gr.Dropdown(choices=model_choices(registry), value=shared.default_model, label="Model",
                           allow_custom_value=True, filterable=True, **options)
    shared.model_dropdowns.append(dropdown)
    return dropdown


def scheduler_dropdown(**options) -> gr.Dropdown:
    return gr.Dropdown(choices=scheduler_names(), value=DEFAULT_SCHEDULER, label="Sampler (scheduler)",
                       filterable=True, **options)


def refresh_models(registry, shared) -> dict:
    """Rescan the models folder and give every model picker the new list (keeping its value)."""
    registry.refresh()
    choices = model_choices(registry)
    return {dropdown: gr.Dropdown(choices=choices) for dropdown in shared.model_dropdowns}


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


def preview_interval(steps: int) -> int:
    """A preview about every tenth of the run: live enough, without flooding the browser."""
    return max(1, round(steps / 10))


def live_run(registry, request: GenerationRequest) -> Iterator[StepUpdate | None]:
    """Step updates of a run in a worker thread (None while waiting: yield something then).

    Closing this generator (Gradio does when the user presses Stop) stops the run at the next step.
    Returns the GenerationResult (StopIteration.value; use `result = yield from live_run(...)`).
    """
    with shown_as_gr_error():
        with GenerationRun(registry.generate, request, preview_interval(request.steps)) as run:
            yield from run.updates(heartbeat=HEARTBEAT_SECONDS)
        return run.result

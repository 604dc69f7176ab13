"""Run one generation in a worker thread and hand its step updates to the caller as they come.

A UI handler is a generator: it iterates `GenerationRun.updates()` and yields a preview per step. When the
user presses Stop, Gradio closes the handler's generator; `GenerationRun` is a context manager whose exit sets
the stop flag that the engine polls every step, so the run really ends (GenerationCancelled in the worker)
instead of burning the device until the last step.
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Callable, Iterator

from pipelines.requests import GenerationRequest, GenerationResult, StepUpdate


@dataclass(frozen=True)
class _Finished:
    result: GenerationResult | None = None
    error: BaseException | None = None


class GenerationRun:
    """`with GenerationRun(generate, request) as run: for update in run.updates(): ...; run.result`.

    `generate` is `registry.generate` (any callable with its keyword arguments). Leaving the `with` block
    early (an exception, or the enclosing generator being closed) asks the worker to stop.
    """

    def __init__(self, generate: Callable[..., GenerationResult], request: GenerationRequest,
                 preview_every: int = 1):
        self._generate = generate
        self._request = request
        self._preview_every = preview_every
        self._events: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="studio-generation", daemon=True)
        self.result: GenerationResult | None = None

    def __enter__(self) -> "GenerationRun":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _work(self) -> None:
        try:
            result = self._generate(self._request, on_step=self._events.put, should_stop=self._stop.is_set,
                                    preview_every=self._preview_every)
            self._events.put(_Finished(result=result))
        except BaseException as error:  # handed to the caller's thread, which re-raises it
            self._events.put(_Finished(error=error))

    def updates(self, heartbeat: float | None = None) -> Iterator[StepUpdate | None]:
        """Step updates until the run ends; then `self.result` is set, or the worker's error is raised.

        With `heartbeat`, a `None` comes every `heartbeat` seconds without a step (while the model loads), so
        a UI generator gets the chance to yield, and to be closed by a Stop, even before the first step.
        """
        while True:
            try:
                event = self._events.get(timeout=heartbeat)
            except queue.Empty:
                yield None
                continue
            if isinstance(event, _Finished):
                if event.error is not None:
                    raise event.error
                self.result = event.result
                return
            yield event

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker thread to end; True when it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

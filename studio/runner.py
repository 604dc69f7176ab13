"""Run one piece of work (a generation, a comparison, a training run) in a worker thread and hand its
progress events to the caller as they come.

A UI handler is a generator: it iterates `run.updates()` and yields what each event shows. When the user
presses Stop, Gradio closes the handler's generator; a run is a context manager whose exit sets the stop
flag that the work polls (the engine every step), so the work really ends (GenerationCancelled in the
worker) instead of burning the device until the last step.
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Callable, Iterator

from pipelines.requests import GenerationRequest, GenerationResult, StepUpdate

# work(emit, should_stop) -> result; it calls emit(event) for every progress event.
Work = Callable[[Callable[[object], None], Callable[[], bool]], object]


@dataclass(frozen=True)
class _Finished:
    result: object = None
    error: BaseException | None = None


class WorkerRun:
    """`with WorkerRun(work) as run: for event in run.updates(): ...; run.result`.

    Leaving the `with` block early (an exception, or the enclosing generator being closed) asks the work to
    stop; with `wait_on_exit`, the exit also waits for the worker to end.
    """

    thread_name = "studio-worker"

    def __init__(self, work: Work, *, wait_on_exit: bool = False):
        self._work_fn = work
        self._wait_on_exit = wait_on_exit
        self._events: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name=self.thread_name, daemon=True)
        self.result = None

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._wait_on_exit:
            self._thread.join()

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _work(self) -> None:
        try:
            result = self._work_fn(self._events.put, self._stop.is_set)
            self._events.put(_Finished(result=result))
        except BaseException as error:  # handed to the caller's thread, which re-raises it
            self._events.put(_Finished(error=error))

    def updates(self, heartbeat: float | None = None) -> Iterator[object | None]:
        """Events until the work ends; then `self.result` is set, or the worker's error is raised.

        With `heartbeat`, a `None` comes every `heartbeat` seconds without an event (while a model loads), so
        a UI generator gets the chance to yield, and to be closed by a Stop, even before the first event.
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


class GenerationRun(WorkerRun):
    """`with GenerationRun(generate, request) as run: for update in run.updates(): ...; run.result`.

    `generate` is `registry.generate` (any callable with its keyword arguments); events are StepUpdates.
    """

    thread_name = "studio-generation"

    def __init__(self, generate: Callable[..., GenerationResult], request: GenerationRequest,
                 preview_every: int = 1):
        def work(emit: Callable[[StepUpdate], None], should_stop: Callable[[], bool]) -> GenerationResult:
            return generate(request, on_step=emit, should_stop=should_stop, preview_every=preview_every)

        super().__init__(work)

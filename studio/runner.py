"""Run one piece of work (a generation, a comparison, a training run) in a worker thread and hand its
progress events to the caller as they come.

A UI handler is a generator: it iterates `run.updates()` and yields what each event shows. Stop and Skip are
explicit: the Stop button calls `run.stop()` (through studio.sessions.RunBook), the work polls the flag (the
engine every step) and ends with GenerationCancelled, keeping what it finished. When Gradio closes the
handler without a Stop (the browser tab was closed, the connection dropped, a client cancelled), the work is
left to run to its end, so the images it makes are still saved (outputs folder, History).

`slots` (one semaphore per device, shared by every run) keeps the device's concurrency limit even while a
run left running that way finishes: a new run waits for a slot.
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Callable, Iterator

from pipelines.requests import GenerationCancelled, GenerationRequest, GenerationResult, StepUpdate

# work(emit, should_stop) -> result; it calls emit(event) for every progress event.
Work = Callable[[Callable[[object], None], Callable[[], bool]], object]
SLOT_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class _Finished:
    result: object = None
    error: BaseException | None = None


@dataclass(frozen=True)
class DeviceBusy:
    """Emitted when the run has to wait for another run (one left running by a closed tab) to free the device."""


class WorkerRun:
    """`with WorkerRun(work) as run: for event in run.updates(): ...; run.result`.

    Leaving the `with` block early with an exception asks the work to stop, except when the exception is
    GeneratorExit (the consuming generator was closed): then the work goes on to its end.
    """

    thread_name = "studio-worker"

    def __init__(self, work: Work, *, slots: threading.Semaphore | None = None):
        self._work_fn = work
        self._slots = slots
        self._events: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._skip = threading.Event()
        self._thread = threading.Thread(target=self._work, name=self.thread_name, daemon=True)
        self.result = None

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        if exc_type is not GeneratorExit:
            self._stop.set()

    def stop(self) -> None:
        self._stop.set()

    def skip(self) -> None:
        """Ask the work to end its current image (the engine's should_skip)."""
        self._skip.set()

    def take_skip(self) -> bool:
        """True once per skip asked for (the flag is cleared as it is read)."""
        if self._skip.is_set():
            self._skip.clear()
            return True
        return False

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def done(self) -> bool:
        return self._thread.ident is not None and not self._thread.is_alive()

    def _take_slot(self) -> bool:
        if self._slots is None:
            return False
        if not self._slots.acquire(blocking=False):
            self._events.put(DeviceBusy())
            while not self._slots.acquire(timeout=SLOT_POLL_SECONDS):
                if self._stop.is_set():
                    raise GenerationCancelled("stopped while waiting for the device")
        return True

    def _work(self) -> None:
        holding = False
        try:
            holding = self._take_slot()
            result = self._work_fn(self._events.put, self._stop.is_set)
            self._events.put(_Finished(result=result))
        except BaseException as error:  # handed to the caller's thread, which re-raises it
            self._events.put(_Finished(error=error))
        finally:
            if holding:
                self._slots.release()

    def updates(self, heartbeat: float | None = None) -> Iterator[object | None]:
        """Events until the work ends; then `self.result` is set, or the worker's error is raised.

        With `heartbeat`, a `None` comes every `heartbeat` seconds without an event (while a model loads), so
        a UI generator gets the chance to yield (and to notice a closed connection) even before the first event.
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
    `user` is who the images belong to (their outputs folder); `skip()` ends the current image.
    """

    thread_name = "studio-generation"

    def __init__(self, generate: Callable[..., GenerationResult], request: GenerationRequest,
                 preview_every: int = 1, *, user: str | None = None, slots: threading.Semaphore | None = None):
        def work(emit: Callable[[StepUpdate], None], should_stop: Callable[[], bool]) -> GenerationResult:
            options = {"user": user} if user is not None else {}
            return generate(request, on_step=emit, should_stop=should_stop, preview_every=preview_every,
                            should_skip=self.take_skip, **options)

        super().__init__(work, slots=slots)

"""Run one DreamBooth training in a worker thread and hand its progress to a UI generator.

Leaving the `with` block (Gradio closes the handler when the user presses Stop) sets the stop flag; the
trainer finishes its step, saves a checkpoint and ends, and the exit waits for that, so the same output
folder is never trained by two runs at once. Pressing Train again with the same name continues.
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Iterator


@dataclass(frozen=True)
class _Finished:
    result: object = None
    error: BaseException | None = None


class TrainingRun:
    def __init__(self, registry, config):
        self._registry = registry
        self._config = config
        self._events: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="studio-dreambooth", daemon=True)
        self.result = None

    def __enter__(self) -> "TrainingRun":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _work(self) -> None:
        from pipelines.dreambooth.base_model import load_training_base
        from pipelines.dreambooth.train import train_dreambooth

        try:
            components, family = load_training_base(self._config.model, self._registry)
            result = train_dreambooth(self._config, components, family=family, on_progress=self._events.put,
                                      should_stop=self._stop.is_set)
            self._events.put(_Finished(result=result))
        except BaseException as error:  # handed to the caller's thread, which re-raises it
            self._events.put(_Finished(error=error))

    def updates(self, heartbeat: float = 0.5) -> Iterator[object]:
        """TrainProgress updates (None every `heartbeat` seconds without one) until the run ends; then
        `self.result` is set, or the worker's error is raised."""
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

"""Run one DreamBooth training in a worker thread and hand its progress to a UI generator.

Stop (the tab's Stop button, through studio.sessions.RunBook) sets the stop flag: the trainer finishes its
step, saves a checkpoint and ends with TrainingStopped; pressing Train again with the same name continues.
A browser tab closed mid-run leaves the training running to its end (see studio.runner).
"""
from __future__ import annotations

import threading
from typing import Iterator

from studio.runner import WorkerRun


class TrainingRun(WorkerRun):
    thread_name = "studio-dreambooth"

    def __init__(self, registry, config, *, slots: threading.Semaphore | None = None):
        def work(emit, should_stop):
            from pipelines.dreambooth.base_model import load_training_base
            from pipelines.dreambooth.train import train_dreambooth

            components, family = load_training_base(config.model, registry)
            return train_dreambooth(config, components, family=family, on_progress=emit, should_stop=should_stop)

        super().__init__(work, slots=slots)

    def updates(self, heartbeat: float | None = 0.5) -> Iterator[object]:
        """TrainProgress updates (None every `heartbeat` seconds without one) until the run ends; then
        `self.result` is set, or the worker's error is raised."""
        return super().updates(heartbeat)

"""Run one DreamBooth training in a worker thread and hand its progress to a UI generator.

Leaving the `with` block (Gradio closes the handler when the user presses Stop) sets the stop flag; the
trainer finishes its step, saves a checkpoint and ends, and the exit waits for that, so the same output
folder is never trained by two runs at once. Pressing Train again with the same name continues.
"""
from __future__ import annotations

from typing import Iterator

from studio.runner import WorkerRun


class TrainingRun(WorkerRun):
    thread_name = "studio-dreambooth"

    def __init__(self, registry, config):
        def work(emit, should_stop):
            from pipelines.dreambooth.base_model import load_training_base
            from pipelines.dreambooth.train import train_dreambooth

            components, family = load_training_base(config.model, registry)
            return train_dreambooth(config, components, family=family, on_progress=emit, should_stop=should_stop)

        super().__init__(work, wait_on_exit=True)

    def updates(self, heartbeat: float | None = 0.5) -> Iterator[object]:
        """TrainProgress updates (None every `heartbeat` seconds without one) until the run ends; then
        `self.result` is set, or the worker's error is raised."""
        return super().updates(heartbeat)

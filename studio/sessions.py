"""Which run belongs to which browser tab, so Stop and Skip reach exactly that run.

A run is filed under (session, tab): the Gradio session hash (one per page load, or per gradio_client
Client) and the studio tab it was started from. Pressing Generate files the tab as queued first, so a Stop
pressed while the run still waits in the queue is kept and the run, when its turn comes, does not start.
One demo has one RunBook (in `Shared`); nothing here is global.
"""
from __future__ import annotations

import threading

from studio.runner import WorkerRun

Key = tuple[str, str]


def run_key(request, tab: str) -> Key:
    """The key of a handler's run: its gr.Request's session (empty when called without one) and the tab."""
    return (getattr(request, "session_hash", None) or "", tab)


class RunBook:
    def __init__(self):
        self._lock = threading.Lock()
        self._runs: dict[Key, WorkerRun] = {}
        self._queued: dict[Key, bool] = {}  # key -> Stop pressed while queued

    def _live(self, key: Key) -> WorkerRun | None:
        run = self._runs.get(key)
        if run is not None and run.done:
            del self._runs[key]
            return None
        return run

    def queued(self, key: Key) -> None:
        """Generate was pressed: a run for `key` is on its way (forgets an older Stop)."""
        with self._lock:
            self._queued[key] = False

    def start(self, key: Key, run: WorkerRun) -> bool:
        """File `run` under `key`; False (and not filed) when Stop was pressed while it was queued."""
        with self._lock:
            if self._queued.pop(key, False):
                return False
            self._runs[key] = run
            return True

    def running(self, key: Key) -> WorkerRun | None:
        with self._lock:
            return self._live(key)

    def stop(self, key: Key) -> str:
        """Stop `key`'s run: "running" (it stops at its next step), "queued" (it will not start) or "idle"."""
        with self._lock:
            run = self._live(key)
            if run is not None:
                run.stop()
                return "running"
            if key in self._queued:
                self._queued[key] = True
                return "queued"
            return "idle"

    def skip(self, key: Key) -> bool:
        """End the current image of `key`'s run; False when nothing runs."""
        with self._lock:
            run = self._live(key)
        if run is None or run.stopping:
            return False
        run.skip()
        return True

"""Several devices behind one registry interface: one worker per device, all fed from one queue.

    pool = DevicePool.create(["cuda:0", "cuda:1"], models_dir="models", outputs_dir="outputs")
    pool.generate(request)          # runs on whichever device is free (waits for one when all are busy)

Each device has its own PipelineRegistry (its own weights in its own memory); the catalog, limits and
outputs folder are the same for all. The web studio's queue runs up to `len(devices) * per_device` events
at once; each takes a free device for the length of its run, so no device runs two requests (unless
`per_device` allows it) and none sits idle while requests wait.
"""
from __future__ import annotations

import queue
from contextlib import contextmanager

from pipelines.registry import PipelineRegistry


class DevicePool:
    def __init__(self, registries: list[PipelineRegistry], per_device: int = 1):
        if not registries:
            raise ValueError("devices: give at least one device")
        if per_device < 1:
            raise ValueError(f"concurrency: must be at least 1, got {per_device}")
        self.registries = list(registries)
        self.per_device = per_device
        self._free: queue.Queue = queue.Queue()
        for _ in range(per_device):
            for registry in self.registries:
                self._free.put(registry)

    @classmethod
    def create(cls, devices: list[str], per_device: int = 1, **registry_options) -> "DevicePool":
        if len(set(devices)) != len(devices) and not all(d == "cpu" for d in devices):
            raise ValueError(f"devices: each device may be named once, got {', '.join(devices)}")
        return cls([PipelineRegistry(device=device, **registry_options) for device in devices], per_device)

    @property
    def workers(self) -> int:
        """How many runs may go at once: the web studio's concurrency limit."""
        return len(self.registries) * self.per_device

    @contextmanager
    def worker(self):
        """A free device's registry, for the length of the block."""
        registry = self._free.get()
        try:
            yield registry
        finally:
            self._free.put(registry)

    def generate(self, request, **kwargs):
        with self.worker() as registry:
            return registry.generate(request, **kwargs)

    def validate(self, request):
        """On a device that holds the model already (the check reads its tokenizer), else the first."""
        holding = [r for r in self.registries if request.model in r.loaded_models()]
        return (holding or self.registries)[0].validate(request)

    def compare(self, request, schedulers=None, steps_values=None, guidance_values=None, **kwargs):
        from pipelines.grid import compare_grid

        return compare_grid(self, request, schedulers, steps_values, guidance_values, **kwargs)

    def refresh(self) -> None:
        for registry in self.registries:
            registry.refresh()

    def __getattr__(self, name: str):
        # Catalog, limits, outputs, depth estimators, ...: the same on every device; ask the first.
        return getattr(self.registries[0], name)

    def __repr__(self) -> str:
        return f"DevicePool({', '.join(str(r.device) for r in self.registries)}, per_device={self.per_device})"

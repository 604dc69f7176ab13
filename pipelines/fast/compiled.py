"""torch.compile of the shared UNet, optional (`PipelineRegistry(compile=True)`, `app.py --compile`).

Compiled once per input shape (image size, batch, dtype; torch.compile's own cache, and inductor's cache on
disk across restarts), and every compile is announced before it starts, on the "pipelines.fast" logger and
to an optional `notify` callback: a first SD 1.5 compile takes minutes on a CPU and tens of seconds on a
GPU, during which the request waits. Runs that change the UNet's modules (LoRAs) or call it piecewise (the
step cache) use the plain UNet.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable

import torch

log = logging.getLogger("pipelines.fast")


def _shape_key(sample: torch.Tensor, encoder_hidden_states: torch.Tensor) -> tuple:
    return tuple(sample.shape), tuple(encoder_hidden_states.shape), sample.dtype


class CompiledUNet:
    """Callable like the UNet; shared by every run of a model (its compiled graphs are the cache)."""

    def __init__(self, unet, *, backend: str = "inductor", mode: str | None = None,
                 notify: Callable[[str], None] | None = None, compiler=torch.compile):
        self.unet = unet
        self.compiled = compiler(unet, backend=backend, mode=mode, dynamic=False)
        self.notify = notify
        self.shapes: set = set()
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.unet, name)

    def __call__(self, sample, timestep, encoder_hidden_states, *args, **kwargs):
        key = _shape_key(sample, encoder_hidden_states)
        with self._lock:
            new = key not in self.shapes
            self.shapes.add(key)
        if new:
            batch, _, height, width = key[0]
            message = (f"compiling the UNet for {height}x{width} latents, batch {batch}, {key[2]}: the first "
                       f"image at this size waits for it (minutes on a CPU); later ones reuse it")
            log.warning(message)
            if self.notify is not None:
                self.notify(message)
        return self.compiled(sample, timestep, encoder_hidden_states, *args, **kwargs)


def compiled_unet(loaded) -> CompiledUNet:
    """The model's compiled UNet, made on first use and kept with the loaded model."""
    with loaded.cache_lock:
        if "compiled_unet" not in loaded.cache:
            loaded.cache["compiled_unet"] = CompiledUNet(loaded.components["unet"])
        return loaded.cache["compiled_unet"]

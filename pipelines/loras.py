"""LoRA adapters on a shared base model, for the length of one generation.

`lora_scope(pipeline, loras)` injects the LoRAs (diffusers/peft or kohya/A1111 files; diffusers converts
the latter) into the pipeline's UNet and text encoder(s), activates them with their weights, and on exit
removes the injected layers, so the base model computes exactly what it did before. The weights are never
merged into the base. The layers live in modules that every pipeline built from the same components
shares, so the caller must not run anything else on that base model while a scope is open (the registry
holds a per-model lock); a second scope opened on the same modules is refused rather than mixed in.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from pipelines.module_building import MODULE_BUILDING
from pipelines.requests import InvalidRequest

LORA_FILE_NAME = "pytorch_lora_weights.safetensors"  # what diffusers' save_lora_weights writes
MAX_LORA_WEIGHT = 4.0
ADAPTER_PREFIX = "studio_lora_"


def lora_file(path: str | Path) -> Path:
    """The weights file of a LoRA given as a file, or as a folder holding pytorch_lora_weights.safetensors."""
    path = Path(path)
    if path.is_dir():
        path = path / LORA_FILE_NAME
    if not path.is_file():
        raise InvalidRequest("loras", f"no LoRA weights at {path}")
    if path.suffix.lower() != ".safetensors":
        raise InvalidRequest("loras", f"{path.name}: LoRAs load from .safetensors files only (pickles can run "
                                      "code); convert it first")
    return path


class LoraCache:
    """The last few LoRA state dicts read from disk, keyed by path and modification time."""

    def __init__(self, max_items: int = 8):
        self.max_items = max_items
        self._items: OrderedDict[tuple, dict] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: str | Path) -> dict:
        from safetensors.torch import load_file

        path = lora_file(path)
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        state = load_file(str(path))
        with self._lock:
            self._items[key] = state
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)
        return state


def check_loras(loras) -> tuple[tuple[str, float], ...]:
    checked = []
    for item in loras:
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise InvalidRequest("loras", f"each LoRA is (path or key, weight), got {item!r}")
        ref, weight = str(item[0]), float(item[1])
        if not ref:
            raise InvalidRequest("loras", "a LoRA path or key is empty")
        if not math.isfinite(weight) or abs(weight) > MAX_LORA_WEIGHT:
            raise InvalidRequest("loras", f"weight of {ref} must be between {-MAX_LORA_WEIGHT} and "
                                          f"{MAX_LORA_WEIGHT}, got {weight}")
        checked.append((ref, weight))
    return tuple(checked)


def _lora_loader(pipeline_or_components):
    """A pipeline with diffusers' LoRA loading over the same (shared) modules. Adapter pipelines lack it
    for SD 1.x, so one is built from the components: cheap, and no weights are copied."""
    from pipelines.checkpoints.folders import text_to_image_pipeline

    components = (pipeline_or_components if isinstance(pipeline_or_components, dict)
                  else pipeline_or_components.components)
    return text_to_image_pipeline(components)


def _has_adapters(loader) -> bool:
    return any(loader.get_list_adapters().values())


@contextmanager
def lora_scope(pipeline, loras, *, cache: LoraCache | None = None,
               resolve: Callable[[str], str | Path] | None = None) -> Iterator[object]:
    """Run the body with `loras` ((path or key, weight), ...) active on `pipeline` (or a components dict).
    `resolve` turns a registry key into a path; `cache` keeps state dicts between runs."""
    loras = check_loras(loras)
    if not loras:
        yield pipeline
        return
    loader = _lora_loader(pipeline)
    if _has_adapters(loader):
        raise RuntimeError("this model already has LoRA layers in it: another LoRA run is using it "
                           "(runs with LoRAs must hold the model's lock)")
    cache = cache or LoraCache(max_items=len(loras))
    names: list[str] = []
    try:
        for index, (ref, _) in enumerate(loras):
            path = resolve(ref) if resolve is not None else ref
            state = cache.get(path)
            name = f"{ADAPTER_PREFIX}{index}"
            try:
                with MODULE_BUILDING:
                    loader.load_lora_weights(state, adapter_name=name)
            except (ValueError, RuntimeError, KeyError) as error:
                raise InvalidRequest("loras", f"{Path(str(path)).name} does not fit this model: "
                                              f"{str(error).splitlines()[0]}") from error
            names.append(name)
        loader.set_adapters(names, adapter_weights=[weight for _, weight in loras])
        yield pipeline
    finally:
        if names or _has_adapters(loader):
            with MODULE_BUILDING:
                loader.unload_lora_weights()  # removes the injected layers; the base weights were never touched


def parse_lora_spec(text: str, default_weight: float = 1.0) -> tuple[str, float]:
    """"PATH[:WEIGHT]" (as the CLI's --lora takes it) -> (path or key, weight). A colon followed by
    something that is not a number belongs to the path (C:\\loras\\x.safetensors)."""
    path, colon, weight = text.rpartition(":")
    if colon and path:
        try:
            return path, float(weight)
        except ValueError:
            pass
    if not text:
        raise InvalidRequest("loras", "empty --lora value; expected PATH[:WEIGHT]")
    return text, default_weight

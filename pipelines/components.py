"""Loading a model's components once and keeping the most recently used ones (a bounded LRU cache).

Cached components are shared, read-only, by every request; a request never mutates them (its scheduler
and generators are its own). LoRA runs do change the shared UNet, so they take `LoadedModel.weights`
exclusively while plain runs share it (see pipelines/rwlock.py).
"""
from __future__ import annotations

import threading
from pathlib import Path
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from pipelines.catalog import ModelSpec, download_hint
from pipelines.module_building import MODULE_BUILDING
from pipelines.families import get_family
from pipelines.requests import InvalidRequest
from pipelines.rwlock import ReadWriteLock


class ModelNotAvailable(InvalidRequest):
    """The model's weights are not on this machine (the message says how to fetch them)."""

    def __init__(self, key: str, detail: str):
        super().__init__("model", detail)
        self.key = key


@dataclass
class LoadedModel:
    spec: ModelSpec
    components: dict[str, Any]
    base_scheduler_config: dict  # the model's saved scheduler config; every request's scheduler starts here
    device: torch.device
    dtype: torch.dtype
    text_lock: threading.Lock = field(default_factory=threading.Lock)  # the fast tokenizer is not thread-safe
    weights: ReadWriteLock = field(default_factory=ReadWriteLock)  # shared by runs, exclusive for LoRA
    cache: dict = field(default_factory=dict)  # derived per-model data (preview factors), filled lazily
    cache_lock: threading.Lock = field(default_factory=threading.Lock)
    fast: Any = None  # the pipelines.fast.paths.FastPaths it was loaded with

    @property
    def family(self) -> str:
        return self.spec.family


class LRUCache:
    """Bounded least-recently-used cache that loads each key at most once, even under concurrency."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"cache_size: must be at least 1, got {capacity}")
        self.capacity = capacity
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[Any, threading.Lock] = {}
        self.loads: dict[Any, int] = {}  # how many times each key was loaded (evictions reload)

    def get(self, key, load: Callable[[], Any]):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:  # one loader per key; others wait for its result
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key]
            value = load()
            with self._lock:
                self.loads[key] = self.loads.get(key, 0) + 1
                self._items[key] = value
                self._items.move_to_end(key)
                while len(self._items) > self.capacity:
                    self._items.popitem(last=False)  # in-flight requests keep their own reference
                self._loading.pop(key, None)
            return value

    def keys(self) -> list:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def pipeline_class(family: str, with_adapter: bool = False, mode: str | None = None):
    """The family's diffusers pipeline class for a mode (pipelines/families.py)."""
    return get_family(family).pipeline_class(mode or ("adapter" if with_adapter else "txt2img"))


# from_pretrained builds models under process-wide meta-device contexts (transformers 5, diffusers): two
# threads loading at once (two devices of a pool, or two models on one) broke each other with "Cannot copy
# out of meta tensor". So reading weights is one at a time per process; running them is not affected.
_READING = threading.Lock()


def load_components(spec: ModelSpec, device: torch.device, dtype: torch.dtype, *,
                    base_components: Callable[[str], dict] | None = None,
                    allow_ckpt: bool = False) -> dict[str, Any]:
    """Read a model's weights from disk (never from the network) and move them to the device."""
    if spec.unet_path is not None and spec.base is not None and base_components is not None:
        base = dict(base_components(spec.base))  # before the lock: the base may be loading in another thread
        base_components = lambda _key: base  # noqa: E731
    with _READING:
        return _load_components(spec, device, dtype, base_components=base_components, allow_ckpt=allow_ckpt)


def _load_components(spec: ModelSpec, device: torch.device, dtype: torch.dtype, *,
                     base_components: Callable[[str], dict] | None, allow_ckpt: bool) -> dict[str, Any]:
    if not spec.available and spec.format == "hub":
        raise ModelNotAvailable(spec.key, f"the weights of {spec.key!r} ({spec.repo_id}) are not on this machine; "
                                f"fetch them with: {download_hint(spec.key)}")
    try:
        if spec.format == "single_file":
            from pipelines.checkpoints.single_file import load_single_file

            try:
                with MODULE_BUILDING:
                    components = dict(load_single_file(spec.source, allow_ckpt=allow_ckpt, dtype=dtype))
            except ValueError as error:  # a refused .ckpt, an inpainting or refiner file, ...
                if isinstance(error, InvalidRequest):
                    raise
                raise InvalidRequest("model", f"{spec.key!r}: {error}") from error
        elif spec.unet_path is not None:
            from diffusers import UNet2DConditionModel

            if spec.base is None or base_components is None:
                raise ModelNotAvailable(spec.key, f"{spec.key!r} holds only a UNet and names no base model; "
                                        'add {"base": KEY} to its studio.json')
            components = dict(base_components(spec.base))  # shares the base's cached VAE and tokenizers
            with MODULE_BUILDING:  # after the base: that load takes this lock itself, and others
                components["unet"] = UNet2DConditionModel.from_pretrained(spec.unet_path, dtype=dtype)
                for name in ("text_encoder", "text_encoder_2"):  # present when training tuned the text encoder
                    folder = Path(spec.unet_path).parent / name
                    if (folder / "config.json").exists():
                        components[name] = type(components[name]).from_pretrained(str(folder), dtype=dtype)
        else:
            with MODULE_BUILDING:
                components = _from_pretrained(spec, dtype)
    except OSError as error:  # missing or partial files
        hint = f"; fetch them with: {download_hint(spec.key)}" if spec.repo_id else ""
        raise ModelNotAvailable(spec.key, f"could not load {spec.key!r} from {spec.source}: {error}{hint}") from error
    return _to_device(components, device, dtype)


def _from_pretrained(spec: ModelSpec, dtype: torch.dtype) -> dict[str, Any]:
    cls = pipeline_class(spec.family)
    # Hub folders list a feature extractor / safety checker we neither download nor use: never load them.
    extra = {"feature_extractor": None, "image_encoder": None}
    if "safety_checker" in cls._get_signature_keys(cls)[0]:
        extra.update(safety_checker=None, requires_safety_checker=False)
    pipe = cls.from_pretrained(spec.source, dtype=dtype, local_files_only=True, variant=spec.variant, **extra)
    return dict(pipe.components)


def _to_device(components: dict[str, Any], device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    out = {}
    for name, module in components.items():
        if isinstance(module, torch.nn.Module):
            target = dtype
            # A VAE flagged force_upcast overflows in float16: keep it in float32 once, here, instead of
            # letting the pipeline flip the shared VAE's dtype back and forth during a run.
            if name == "vae" and dtype == torch.float16 and getattr(module.config, "force_upcast", False):
                target = torch.float32
            current = next(module.parameters(), torch.empty(0, dtype=target)).dtype
            # Weights were read in `dtype` already; only cast when that differs (diffusers warns otherwise).
            module = module.to(device=device) if current == target else module.to(device=device, dtype=target)
            module.requires_grad_(False)
            module.eval()
        out[name] = module
    return out

"""PipelineRegistry: the one object the studio talks to.

    registry = PipelineRegistry(models_dir="models", outputs_dir="outputs")
    result = registry.generate(GenerationRequest(prompt="a red circle", seed=1))

Model weights are loaded once per (model, device, dtype) and kept in a small LRU cache; each request
builds its own pipeline object, scheduler and generators around them.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Callable

from pipelines.catalog import DEFAULT_MODEL, Limits, LoraSpec, ModelSpec, UnknownFamily, builtin_specs
from pipelines.components import LoadedModel, LRUCache, ModelNotAvailable, load_components
from pipelines.devices import choose_device
from pipelines.generation import RunHooks, run_images
from pipelines.metadata import FileHashes
from pipelines.memory import free_memory, is_out_of_memory, out_of_memory
from pipelines.model_scan import scan_models_dir, spec_for_path
from pipelines.modes import with_defaults
from pipelines.noise import image_seeds, resolve_seeds
from pipelines.outputs import OutputWriter
from pipelines.paths import check_policy, inside, typed_path
from pipelines.prompts import EmbeddingLibrary, check_prompts, embedding_widths
from pipelines.requests import (GeneratedImage, GenerationCancelled, GenerationRequest, GenerationResult,
                                InvalidRequest, StepUpdate)
from pipelines.validation import validate_request


EMBEDDINGS_FOLDER = "embeddings"  # inside the models folder


class PipelineRegistry:
    def __init__(self, models_dir: str | Path | None = "models", outputs_dir: str | Path = "outputs",
                 device=None, dtype=None, cache_size: int = 2, save_outputs: bool = True,
                 allow_ckpt: bool = False, allow_paths: str = "any", compile: bool = False,
                 unet_batch: int | None = None):
        """`allow_paths`: where a typed model, LoRA or depth-model path may point: "any" (the default: the CLI
        and Python), or "models-dir" (the web studio: only inside the models folder; see pipelines/paths.py).
        `compile`: torch.compile the UNet (pipelines/fast/compiled.py). `unet_batch`: at most this many images
        of a request through the UNet at once (None: the device's default, pipelines/fast/paths.py)."""
        from pipelines.fast import paths as fast_paths

        self.allow_paths = check_policy(allow_paths)
        choice = choose_device(device, dtype)
        # `dtype`: what Stable Diffusion-sized models run in; a small model may run in another unless the
        # operator chose one (see fast_paths_for and pipelines/fast/paths.py).
        self.device, self.dtype = choice.device, choice.dtype
        self._choice, self.compile = choice, compile
        if unet_batch is not None and not (isinstance(unet_batch, int) and 1 <= unet_batch <= 64):
            raise ValueError(f"unet_batch: must be a whole number from 1 to 64, got {unet_batch!r}")
        self.unet_batch = unet_batch
        self._cpu = None
        if self.device.type == "cpu":
            from pipelines.fast.machine import cpu_info

            self._cpu = cpu_info()
        self.fast = self.fast_paths_for(None)
        fast_paths.apply_threads(self.fast)
        self.models_dir = Path(models_dir) if models_dir is not None else None
        self.outputs = OutputWriter(outputs_dir)
        self.file_hashes = FileHashes()  # "Model hash" of single-file checkpoints, computed once per file
        self.save_outputs = save_outputs
        self.allow_ckpt = allow_ckpt
        self._models = LRUCache(cache_size)
        self._adapters = LRUCache(max(4, 2 * cache_size))
        self._catalog_lock = threading.Lock()
        self._catalog: dict[str, ModelSpec] = {}
        self._loras: dict[str, LoraSpec] = {}
        self._depth = None
        self._lora_cache = None
        self.embeddings = EmbeddingLibrary(self.models_dir / EMBEDDINGS_FOLDER if self.models_dir else None)
        self.refresh()

    # ---- catalog -------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Rescan the models folder (and whether built-in weights are on disk)."""
        catalog = builtin_specs(self.models_dir)
        found, loras = scan_models_dir(self.models_dir, allow_ckpt=self.allow_ckpt)
        catalog.update({k: v for k, v in found.items() if k not in catalog})
        with self._catalog_lock:
            self._catalog, self._loras = catalog, loras
        self.embeddings.rescan()

    def model_names(self) -> list[str]:
        with self._catalog_lock:
            return list(self._catalog)

    def lora_names(self) -> list[str]:
        with self._catalog_lock:
            return list(self._loras)

    def embedding_names(self, family: str | None = None) -> list[str]:
        """Textual-inversion embeddings in `models/embeddings/` (a prompt uses one by naming it); with a
        family, only those whose vectors fit its text encoders."""
        if family is None:
            return self.embeddings.names()
        return self.embeddings.with_widths(embedding_widths(family))

    def lora_info(self, key: str) -> LoraSpec:
        with self._catalog_lock:
            if key in self._loras:
                return self._loras[key]
        path = typed_path(key, "loras", policy=self.allow_paths, models_dir=self.models_dir)
        if path is not None:
            return LoraSpec(key, str(path))
        raise InvalidRequest("loras", f"unknown LoRA {key!r}; choose one of: {', '.join(self.lora_names()) or 'none'}"
                             " or give the path of a LoRA file")

    def model_info(self, key: str) -> ModelSpec:
        """The catalog entry for a key, or for a path to a diffusers folder / single checkpoint file."""
        with self._catalog_lock:
            if key in self._catalog:
                return self._catalog[key]
        path = typed_path(key, "model", policy=self.allow_paths, models_dir=self.models_dir)
        if path is not None:
            try:
                spec = spec_for_path(path, key=str(key), allow_ckpt=self.allow_ckpt)
            except UnknownFamily as error:
                raise InvalidRequest("model", str(error)) from None
            if isinstance(spec, ModelSpec):
                return spec
            raise InvalidRequest("model", f"{key!r} is not a model (a diffusers folder, .safetensors or .ckpt)")
        raise InvalidRequest("model", f"unknown model {key!r}; choose one of: {', '.join(self.model_names())}"
                             " or give a path to a model folder or file")

    def limits(self, model_key: str = DEFAULT_MODEL) -> Limits:
        return self.model_info(model_key).limits

    # ---- loading -------------------------------------------------------------------------------
    def fast_paths_for(self, family: str | None):
        """dtype, memory format, ... for a model of `family` on this registry's device (the operator's dtype
        wins); None: a Stable Diffusion-sized model."""
        from pipelines.fast import paths as fast_paths

        choice = self._choice
        return fast_paths.choose(self.device, choice.dtype if choice.explicit else None, family=family,
                                 dtype_reason=choice.dtype_reason, compile=self.compile, cpu=self._cpu,
                                 unet_batch=self.unet_batch)

    def load(self, key: str) -> LoadedModel:
        """The cached components of a model, loading them on first use."""
        spec = self.model_info(key)
        fast = self.fast_paths_for(spec.family)
        cache_key = (spec.key, spec.source, str(self.device), str(fast.dtype))
        return self._models.get(cache_key, lambda: self._load(spec, fast))

    def _load(self, spec: ModelSpec, fast) -> LoadedModel:
        from pipelines.fast import paths as fast_paths

        components = load_components(spec, self.device, fast.dtype, allow_ckpt=self.allow_ckpt,
                                     base_components=lambda base: self.load(base).components)
        fast_paths.apply(components, fast)
        scheduler = components["scheduler"]
        # A plain dict copy of the saved config: every request's scheduler is derived from it.
        base_config = dict(scheduler.config)
        return LoadedModel(spec, components, base_config, self.device, fast.dtype, fast=fast)

    @property
    def load_counts(self) -> dict:
        """How many times each (model, source, device, dtype) was loaded: 1 unless it was evicted."""
        return dict(self._models.loads)

    def loaded_models(self) -> list[str]:
        return [key[0] for key in self._models.keys()]

    # ---- generation ----------------------------------------------------------------------------
    def validate(self, request: GenerationRequest) -> ModelSpec:
        spec = self.model_info(request.model)
        validate_request(request, spec, adapter_kinds=self._adapter_kind_check if request.adapters else None)
        if self.allow_paths != "any" and any(isinstance(a.image, (str, bytes, os.PathLike)) for a in request.adapters):
            raise InvalidRequest("adapters", "a condition image must be uploaded here, not named by a path")
        for key, _ in request.loras:
            self.lora_info(key)  # an unknown LoRA is refused before any work
        # Loads the model when needed (an absent one raises ModelNotAvailable with the download command);
        # the prompts are read with the model's own tokenizer (weights, embeddings, clip skip depth).
        check_prompts(self.load(request.model), request.prompt, request.negative_prompt,
                      clip_skip=request.clip_skip, embeddings=self.embeddings)
        return spec

    def generate(self, request: GenerationRequest, on_step: Callable[[StepUpdate], None] | None = None,
                 should_stop: Callable[[], bool] | None = None, preview_every: int = 0, *,
                 should_skip: Callable[[], bool] | None = None, user: str | None = None) -> GenerationResult:
        """Run `request`; each image is saved as soon as it is made (in `user`'s folder, see OutputWriter).

        `should_stop()` true ends the run: GenerationCancelled is raised, its `partial` holding the images
        made before. `should_skip()` true ends the current image (A1111's Skip; see RunHooks).
        """
        started = time.perf_counter()
        if isinstance(preview_every, bool) or not isinstance(preview_every, int) or preview_every < 0:
            raise InvalidRequest("preview_every", f"must be 0 (never) or a positive whole number, got {preview_every!r}")
        loading = True
        try:
            spec = self.validate(request)  # loads the model
            loading = False
            request = with_defaults(request)  # a mode's unset settings at A1111's defaults, saved as they ran
            request = resolve_seeds(request, self.limits(request.model).max_seed)
            seeds, variation_seeds = zip(*image_seeds(request))
            loaded = self.load(request.model)
            adapter, maps, adapter_inputs = self._adapters_for(loaded, request)
            items: list[GeneratedImage] = []
            extra = self.file_hashes.model_fields(spec) if self.save_outputs else {}

            def keep(index: int, image, skipped_at: int | None) -> None:
                own = request.with_(seed=seeds[index], variation_seed=variation_seeds[index], num_images=1,
                                    batch_count=1)
                save = self.save_outputs and skipped_at is None  # as A1111: an unfinished image is not saved
                path = self.outputs.save(image, own, maps, extra, user=user) if save else None
                items.append(GeneratedImage(image, seeds[index], own, path, maps, skipped_at))

            hooks = RunHooks(on_step, should_stop, preview_every, lambda: self._preview_matrix(loaded),
                             should_skip=should_skip, on_image=keep)
            run = dict(adapter=adapter, conditions=adapter_inputs, variation_seeds=list(variation_seeds),
                       embedding_library=self.embeddings)
            try:
                if request.loras:
                    self._run_with_loras(loaded, request, list(seeds), hooks, run)
                else:
                    with loaded.weights.shared():
                        run_images(loaded, request, list(seeds), hooks, **run)
            except GenerationCancelled as cancelled:
                cancelled.partial = GenerationResult(tuple(items), request, time.perf_counter() - started)
                raise
        except Exception as error:  # noqa: BLE001 - only out-of-memory is handled; the rest is re-raised
            if not is_out_of_memory(error):
                raise
            failure = out_of_memory(self.device, request, loading=loading)
        else:
            failure = None
        if failure is not None:  # raised out here: the original's traceback, and the tensors it held, are gone
            free_memory(self.device)
            raise failure
        return GenerationResult(tuple(items), request, time.perf_counter() - started)

    def _run_with_loras(self, loaded, request, seeds, hooks, run: dict):
        from pipelines.loras import LoraCache, lora_scope

        with self._catalog_lock:
            if self._lora_cache is None:
                self._lora_cache = LoraCache()
        paths = tuple((self.lora_info(key).path, weight) for key, weight in request.loras)
        # A LoRA changes the shared UNet/text encoder while active: no other run may use them meanwhile.
        from pipelines.fast.paths import unfused

        with loaded.weights.exclusive(), unfused(loaded.components.get("unet")):
            with lora_scope(dict(loaded.components), paths, cache=self._lora_cache):
                return run_images(loaded, request, seeds, hooks, **run)

    def compare(self, request: GenerationRequest, schedulers: list[str] | None = None,
                steps_values: list[int] | None = None, guidance_values: list[float] | None = None, **kwargs):
        """Same seed, one image per combination; returns (labelled grid image, list of results)."""
        from pipelines.grid import compare_grid

        return compare_grid(self, request, schedulers, steps_values, guidance_values, **kwargs)

    # ---- adapters and previews -----------------------------------------------------------------
    def _adapter_kind_check(self, family: str, kind: str):
        from pipelines.adapter_runtime import check_adapter_kind

        return check_adapter_kind(family, kind)

    def _adapters_for(self, loaded: LoadedModel, request: GenerationRequest):
        """(adapter module, condition maps as shown and saved, maps as fed to the adapters)."""
        if not request.adapters:
            return None, (), None
        from pipelines import adapter_runtime as rt

        maps = rt.condition_images(request, depth=self.depth_estimators())
        models = rt.adapter_models(self._adapters, loaded, request)
        return rt.combined_adapter(models), tuple(maps), rt.adapter_inputs(models, maps)

    def depth_estimators(self):
        """Depth models for the depth preprocessor, loaded on first use and kept with this registry."""
        with self._catalog_lock:
            if self._depth is None:
                from pipelines.adapters import DepthEstimators

                confine = None if self.allow_paths == "any" else (lambda text: inside(text, self.models_dir))
                self._depth = DepthEstimators(models_dir=self.models_dir, confine=confine)
            return self._depth

    _depth_estimators = depth_estimators  # the name the adapters tab first used

    def _preview_matrix(self, loaded: LoadedModel):
        from pipelines.previews import fit_linear_preview

        with loaded.cache_lock:
            if "preview" not in loaded.cache:
                loaded.cache["preview"] = fit_linear_preview(loaded.components["vae"])
            return loaded.cache["preview"]

    def __repr__(self) -> str:
        return f"PipelineRegistry(device={self.device}, dtype={self.dtype}, models={self.model_names()})"


__all__ = ["PipelineRegistry", "ModelNotAvailable"]

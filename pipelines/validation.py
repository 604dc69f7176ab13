"""Check a GenerationRequest against a model's limits. Every problem names the field and what is allowed;
nothing is ever corrected silently."""
from __future__ import annotations

import math
import numbers

from pipelines.catalog import Limits, ModelSpec
from pipelines.fast.step_cache import MAX_INTERVAL as MAX_STEP_CACHE
from pipelines.requests import AdapterInput, GenerationRequest, InvalidRequest
from pipelines.schedulers import scheduler_spec

MAX_LORA_WEIGHT = 4.0
MAX_ADAPTER_WEIGHT = 4.0


def _int(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidRequest(name, f"must be a whole number from {low} to {high}, got {value!r}")
    if not low <= value <= high:
        raise InvalidRequest(name, f"must be from {low} to {high}, got {value}")
    return int(value)


def _float(name: str, value, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise InvalidRequest(name, f"must be a number from {low:g} to {high:g}, got {value!r}")
    if not low <= value <= high:
        raise InvalidRequest(name, f"must be from {low:g} to {high:g}, got {value:g}")
    return float(value)


def _text(name: str, value, max_chars: int) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(name, f"must be text, got {type(value).__name__}")
    if len(value) > max_chars:
        raise InvalidRequest(name, f"must be at most {max_chars} characters, got {len(value)}")
    return value


def _size(name: str, value, limits: Limits) -> int:
    low, high, step = limits.min_size, limits.max_size, limits.size_multiple
    allowed = f"a multiple of {step} from {low} to {high}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidRequest(name, f"must be {allowed}, got {value!r}")
    if not low <= value <= high or value % step:
        raise InvalidRequest(name, f"must be {allowed}, got {value}")
    return int(value)


def validate_request(request: GenerationRequest, spec: ModelSpec, *, adapter_kinds=None) -> None:
    """Raise InvalidRequest for the first field outside what `spec` allows.

    `adapter_kinds(family, kind)` checks an adapter kind for this model family (the adapters catalog).
    """
    if not isinstance(request, GenerationRequest):
        raise InvalidRequest("request", f"must be a GenerationRequest, got {type(request).__name__}")
    limits = spec.limits
    _text("prompt", request.prompt, limits.max_prompt_chars)
    _text("negative_prompt", request.negative_prompt, limits.max_prompt_chars)
    _size("width", request.width, limits)
    _size("height", request.height, limits)
    if not isinstance(request.scheduler, str):
        raise InvalidRequest("scheduler", f"must be a scheduler name, got {request.scheduler!r}")
    sched = scheduler_spec(request.scheduler)
    max_steps = min(limits.max_steps, sched.max_steps)
    _int("steps", request.steps, limits.min_steps, max_steps)
    _float("guidance_scale", request.guidance_scale, limits.min_guidance, limits.max_guidance)
    images = _int("num_images", request.num_images, limits.min_images, limits.max_images)
    # image k uses seed + k, so the last image's seed must still be a valid seed
    highest = limits.max_seed - images + 1
    seed_range = f"-1 (random) or a whole number from 0 to {highest}"
    if isinstance(request.seed, bool) or not isinstance(request.seed, numbers.Integral):
        raise InvalidRequest("seed", f"must be {seed_range}, got {request.seed!r}")
    if request.seed != -1 and not 0 <= request.seed <= highest:
        raise InvalidRequest("seed", f"must be {seed_range} (with {images} image(s)), got {request.seed}")
    _float("adapter_conditioning_factor", request.adapter_conditioning_factor, 0.0, 1.0)
    _int("step_cache", request.step_cache, 0, MAX_STEP_CACHE)
    if request.adapter_conditioning_factor != 1.0 and spec.family != "sdxl":
        raise InvalidRequest("adapter_conditioning_factor", "only SDXL adapters take a conditioning factor; "
                             f"{spec.key!r} is {spec.family}: leave it at 1.0")
    for k, adapter in enumerate(request.adapters):
        if not isinstance(adapter, AdapterInput):
            raise InvalidRequest("adapters", f"item {k} must be an AdapterInput, got {type(adapter).__name__}")
        _float("adapters", adapter.weight, 0.0, MAX_ADAPTER_WEIGHT)
        if adapter_kinds is not None:
            adapter_kinds(spec.family, adapter.kind)
    if request.adapters and spec.family == "sd2":
        raise InvalidRequest("adapters", "T2I-Adapters are offered for SD 1.x, SDXL and the shapes model, "
                             f"not for {spec.key!r} (SD 2)")
    for path, weight in request.loras:
        if not path:
            raise InvalidRequest("loras", "a LoRA needs a path or a key")
        _float("loras", weight, -MAX_LORA_WEIGHT, MAX_LORA_WEIGHT)

"""Check a GenerationRequest against a model's limits. Every problem names the field and what is allowed;
nothing is ever corrected silently."""
from __future__ import annotations

import math
import numbers

from pipelines.catalog import Limits, ModelSpec
from pipelines.families import FAMILIES, get_family
from pipelines.fast.step_cache import MAX_INTERVAL as MAX_STEP_CACHE
from pipelines.modes.validation import validate_modes
from pipelines.requests import AdapterInput, GenerationRequest, InvalidRequest, shown
from pipelines.schedulers import resolve_sampler

MAX_LORA_WEIGHT = 4.0
MAX_ADAPTER_WEIGHT = 4.0
MAX_CLIP_SKIP = 12  # A1111's slider; a model with fewer text-encoder layers allows fewer (pipelines/prompts)
MAX_BATCH_COUNT = 100  # as AUTOMATIC1111's batch count slider


def _int(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidRequest(name, f"must be a whole number from {low} to {high}, got {shown(value)}")
    if not low <= value <= high:
        raise InvalidRequest(name, f"must be from {low} to {high}, got {shown(value)}")
    return int(value)


def _float(name: str, value, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise InvalidRequest(name, f"must be a number from {low:g} to {high:g}, got {shown(value)}")
    if not low <= value <= high:
        raise InvalidRequest(name, f"must be from {low:g} to {high:g}, got {float(value):g}")
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
        raise InvalidRequest(name, f"must be {allowed}, got {shown(value)}")
    if not low <= value <= high or value % step:
        raise InvalidRequest(name, f"must be {allowed}, got {shown(value)}")
    return int(value)


def _seed(name: str, value, max_seed: int, images: int) -> None:
    highest = max_seed - images + 1
    seed_range = f"-1 (random) or a whole number from 0 to {highest}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidRequest(name, f"must be {seed_range}, got {shown(value)}")
    if value != -1 and not 0 <= value <= highest:
        raise InvalidRequest(name, f"must be {seed_range} (with {images} image(s)), got {shown(value)}")


def _adapter_fields(index: int, adapter: AdapterInput) -> None:
    if not isinstance(adapter.kind, str) or not adapter.kind:
        raise InvalidRequest("adapters", f"item {index}: the kind must be a name such as 'sketch', "
                                         f"got {shown(adapter.kind)}")
    _float("adapters", adapter.weight, 0.0, MAX_ADAPTER_WEIGHT)
    if not isinstance(adapter.preprocess, bool):
        raise InvalidRequest("adapters", f"item {index}: preprocess must be true or false, got {shown(adapter.preprocess)}")
    options = adapter.options
    if not (isinstance(options, tuple) and all(isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)
                                               for pair in options)):
        raise InvalidRequest("adapters", f"item {index}: options must map names to values, got {shown(options)}")


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
        raise InvalidRequest("scheduler", f"must be a sampler name, got {shown(request.scheduler)}")
    sched = resolve_sampler(request.scheduler, request.schedule_type).spec
    max_steps = min(limits.max_steps, sched.max_steps)
    _int("steps", request.steps, limits.min_steps, max_steps)
    _float("guidance_scale", request.guidance_scale, limits.min_guidance, limits.max_guidance)
    images = _int("num_images", request.num_images, limits.min_images, limits.max_images)
    _int("clip_skip", request.clip_skip, 1, MAX_CLIP_SKIP)
    images *= _int("batch_count", request.batch_count, 1, MAX_BATCH_COUNT)
    strength = _float("variation_strength", request.variation_strength, 0.0, 1.0)
    # image k uses seed + k (variation seed + k when varying), so the last one must still be a valid seed
    _seed("seed", request.seed, limits.max_seed, 1 if strength else images)
    _seed("variation_seed", request.variation_seed, limits.max_seed, images)
    _float("adapter_conditioning_factor", request.adapter_conditioning_factor, 0.0, 1.0)
    _int("step_cache", request.step_cache, 0, MAX_STEP_CACHE)
    family = get_family(spec.family)
    if request.adapter_conditioning_factor != 1.0 and not family.adapter_factor:
        raise InvalidRequest("adapter_conditioning_factor", "only SDXL adapters take a conditioning factor; "
                             f"{spec.key!r} is {spec.family}: leave it at 1.0")
    for k, adapter in enumerate(request.adapters):
        if not isinstance(adapter, AdapterInput):
            raise InvalidRequest("adapters", f"item {k} must be an AdapterInput, got {type(adapter).__name__}")
        _adapter_fields(k, adapter)
        if adapter_kinds is not None:
            adapter_kinds(spec.family, adapter.kind)
    if request.adapters and not family.adapters:
        offered = ", ".join(f.label for f in FAMILIES.values() if f.adapters)
        raise InvalidRequest("adapters", f"T2I-Adapters are offered for {offered}, "
                             f"not for {spec.key!r} ({family.label})")
    for path, weight in request.loras:
        if not path:
            raise InvalidRequest("loras", "a LoRA needs a path or a key")
        _float("loras", weight, -MAX_LORA_WEIGHT, MAX_LORA_WEIGHT)
    validate_modes(request, family)  # image to image, inpainting, outpainting, hires fix

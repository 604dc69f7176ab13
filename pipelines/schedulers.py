"""The sampler registry: AUTOMATIC1111's sampler names -> how to sample, plus A1111's schedule types.

A request names a sampler ("DPM++ 2M") and a schedule type ("Automatic", "Karras", ...), as A1111 1.9+ does.
The k-diffusion samplers (Euler, DPM++, ...) run the studio's own implementation on A1111's sigma schedule
(pipelines/sampling), so a name computes what A1111 computes for it; "Automatic" is A1111's choice per sampler
(Karras for DPM++ 2M, Exponential for DPM++ 2M SDE, ...). DDIM, PLMS, UniPC, DEIS, DDPM and LCM keep their
diffusers form and take no schedule type. Older combined names ("DPM++ 2M Karras", "LMS Karras") are kept as
keys: they name a sampler with its schedule fixed.

Registering your own (any diffusers ``SchedulerMixin`` subclass; each request gets a fresh one built from the
model's own saved scheduler config, so settings never leak into other requests)::

    from diffusers import EulerDiscreteScheduler
    from pipelines.schedulers import register_scheduler

    register_scheduler("Euler trailing", EulerDiscreteScheduler, suggested_steps=20,
                       timestep_spacing="trailing")
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from diffusers import (DDIMScheduler, DDPMScheduler, DEISMultistepScheduler, LCMScheduler, PNDMScheduler,
                       UniPCMultistepScheduler)
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from pipelines.metadata import names
from pipelines.requests import InvalidRequest
from pipelines.sampling import k_samplers as k
from pipelines.sampling.schedules import AUTOMATIC, SCHEDULE_TYPES


@dataclass(frozen=True)
class SchedulerSpec:
    sampler: str  # A1111's "Sampler:" name
    function: Callable | None = None  # a k-diffusion-style sampler (pipelines/sampling/k_samplers.py)
    automatic: str | None = None  # the schedule "Automatic" means for it (k samplers)
    drop_penultimate: bool = False  # A1111 samples one step more and drops the next-to-last sigma
    cls: type | None = None  # a diffusers scheduler class (diffusers-form samplers)
    overrides: Mapping[str, Any] = field(default_factory=dict)
    suggested_steps: int = 20
    max_steps: int = 150
    fixed_schedule: str | None = None  # older combined names: "DPM++ 2M Karras" fixes "Karras"

    @property
    def is_k_sampler(self) -> bool:
        return self.function is not None

    @property
    def schedule_type(self) -> str | None:
        """The schedule this entry uses when none is asked for (None for the diffusers-form samplers)."""
        return self.fixed_schedule or self.automatic


def _k(name, function, automatic="Uniform", steps=20, drop_penultimate=False):
    return SchedulerSpec(name, function, automatic, drop_penultimate, suggested_steps=steps)


def _diffusers(name, cls, overrides=None, steps=20, max_steps=150):
    return SchedulerSpec(name, cls=cls, overrides=dict(overrides or {}), suggested_steps=steps,
                         max_steps=max_steps)


SAMPLERS: dict[str, SchedulerSpec] = {spec.sampler: spec for spec in (
    # A1111 1.10's samplers with their "Automatic" schedule and the next-to-last sigma they drop.
    _k("DPM++ 2M", k.dpmpp_2m, "Karras"),
    _k("DPM++ SDE", k.dpmpp_sde, "Karras", steps=15),
    # measured on the bundled model (48 held-out prompts, two seed sets): at 20 steps shape 79-81% and
    # position 81-83%; at 30 steps 88-94% on both
    _k("DPM++ 2M SDE", k.dpmpp_2m_sde, "Exponential", steps=30),
    _k("DPM++ 2M SDE Heun", k.dpmpp_2m_sde_heun, "Exponential"),
    _k("DPM++ 2S a", k.dpmpp_2s_ancestral, "Karras", steps=15),
    _k("DPM++ 3M SDE", k.dpmpp_3m_sde, "Exponential", steps=30, drop_penultimate=True),
    _k("Euler a", k.euler_ancestral),
    _k("Euler", k.euler),
    _k("LMS", k.lms),
    _k("Heun", k.heun, steps=15),
    _k("DPM2", k.dpm_2, "Karras", steps=15, drop_penultimate=True),
    # Ancestral: fresh noise every step; on the shapes model's 200 held-out prompts its class settled near
    # 30 steps (78/84/88/90/93% at 15/20/25/30/40 steps with diffusers' schedule).
    _k("DPM2 a", k.dpm_2_ancestral, "Karras", steps=30, drop_penultimate=True),
    # Diffusers' own form (A1111 has its own DDIM/PLMS/UniPC on timesteps; DEIS and DDPM it lacks).
    _diffusers("DDIM", DDIMScheduler),
    _diffusers("PLMS", PNDMScheduler, {"skip_prk_steps": True}),
    _diffusers("UniPC", UniPCMultistepScheduler),
    _diffusers("DEIS", DEISMultistepScheduler),
    _diffusers("DDPM", DDPMScheduler, steps=50),
    # LCM sets timesteps from its `original_inference_steps` (50): more steps than that are refused.
    _diffusers("LCM", LCMScheduler, steps=4, max_steps=50),
)}


def _combined(sampler: str, schedule: str, steps: int | None = None) -> SchedulerSpec:
    base = SAMPLERS[sampler]
    return SchedulerSpec(base.sampler, base.function, base.automatic, base.drop_penultimate,
                         suggested_steps=steps or base.suggested_steps, fixed_schedule=schedule)


# Every name a request may give: the samplers, and the older combined names A1111 wrote before 1.9 (and this
# studio offered), each fixing its schedule. Keys are public: never rename one.
SCHEDULERS: dict[str, SchedulerSpec] = dict(SAMPLERS)
SCHEDULERS.update({f"{sampler} {schedule}": _combined(sampler, schedule) for sampler, schedule in (
    ("Euler", "Karras"), ("LMS", "Karras"), ("Heun", "Karras"), ("DPM2", "Karras"), ("DPM2 a", "Karras"),
    ("DPM++ 2M", "Karras"), ("DPM++ 2M SDE", "Karras"), ("DPM++ 2M SDE", "Exponential"),
    ("DPM++ 3M SDE", "Karras"), ("DPM++ 3M SDE", "Exponential"), ("DPM++ SDE", "Karras"),
    ("DPM++ 2S a", "Karras"), ("DPM++ 2M SDE Heun", "Karras"), ("DPM++ 2M SDE Heun", "Exponential"),
)})

SCHEDULE_TYPE_NAMES = (AUTOMATIC, *SCHEDULE_TYPES)
DEFAULT_SCHEDULE_TYPES = ("", AUTOMATIC, "Default")  # what other studios write for "the sampler's own"

@dataclass(frozen=True)
class ResolvedSampler:
    spec: SchedulerSpec
    schedule: str | None  # the schedule type label used (None: the diffusers form, no schedule)

    @property
    def name(self) -> str:
        return self.spec.sampler


def scheduler_names() -> list[str]:
    """The sampler names to offer (A1111's, then any registered); combined older names are accepted too."""
    return [name for name, spec in SCHEDULERS.items() if spec.fixed_schedule is None]


def schedule_type_names() -> list[str]:
    return list(SCHEDULE_TYPE_NAMES)


def scheduler_spec(name: str) -> SchedulerSpec:
    canonical = _canonical(name) if isinstance(name, str) else None
    if canonical is None:
        raise InvalidRequest("scheduler", f"unknown sampler {name!r}; choose one of: " + ", ".join(scheduler_names()))
    return SCHEDULERS[canonical]


def suggested_steps(name: str) -> int:
    return scheduler_spec(name).suggested_steps


def resolve_sampler(name: str, schedule_type: str | None = AUTOMATIC) -> ResolvedSampler:
    """The sampler and schedule a request's (scheduler, schedule_type) pair means, or InvalidRequest.

    resolve_sampler("DPM++ 2M") -> DPM++ 2M on Karras (A1111's "Automatic" for it);
    resolve_sampler("DPM++ 2M Karras") and resolve_sampler("dpmpp_2m", "karras") -> the same.
    """
    spec = scheduler_spec(name)
    raw = (schedule_type or "").strip() if isinstance(schedule_type, str) or schedule_type is None else None
    if raw is None:
        raise InvalidRequest("schedule_type", f"must be a schedule type name, got {schedule_type!r}")
    label = _schedule_label(raw)
    if not spec.is_k_sampler:
        if label not in (AUTOMATIC, None):
            raise InvalidRequest("schedule_type", f"{spec.sampler} has no schedule types (it runs in diffusers' "
                                 f"form); leave it at Automatic, got {schedule_type!r}")
        return ResolvedSampler(spec, None)
    if label is None:
        raise InvalidRequest("schedule_type", f"unknown schedule type {schedule_type!r}; choose one of: "
                             + ", ".join(SCHEDULE_TYPE_NAMES))
    if spec.fixed_schedule and label not in (AUTOMATIC, spec.fixed_schedule):
        raise InvalidRequest("schedule_type", f"{name!r} already names its schedule ({spec.fixed_schedule}); "
                             f"choose {spec.sampler!r} with schedule type {label!r} instead")
    return ResolvedSampler(spec, spec.schedule_type if label == AUTOMATIC else label)


def _schedule_label(raw: str) -> str | None:
    if raw.lower() in (s.lower() for s in DEFAULT_SCHEDULE_TYPES):
        return AUTOMATIC
    label = names.schedule_label(raw)  # ComfyUI's, Stability Matrix's, ... spellings
    return label if label in SCHEDULE_TYPES else None


def canonical_sampler(sampler: str, schedule_type: str | None = None) -> tuple[str, str]:
    """(sampler, schedule type) as a request states them, from any naming: ("DPM++ 2M Karras", None) ->
    ("DPM++ 2M", "Karras"), ("dpmpp_2m", "karras") -> the same. Unknown names raise InvalidRequest."""
    resolved = resolve_sampler(sampler, schedule_type)
    return resolved.name, resolved.schedule or AUTOMATIC


def _canonical(raw: str) -> str | None:
    """Our key for a sampler name: ours (any case), or how another studio spells it (metadata/names.py)."""
    raw = raw.strip()
    lowered = {name.lower(): name for name in SCHEDULERS}
    if raw.lower() in lowered:
        return lowered[raw.lower()]
    foreign = names.to_a1111(raw)
    if foreign.schedule_type not in (AUTOMATIC, None):
        combined = f"{foreign.sampler} {foreign.schedule_type}"
        return combined if combined in SCHEDULERS else None
    return foreign.sampler if foreign.sampler in SCHEDULERS else None


def a1111_sampler_fields(sampler: str, schedule_type: str | None = AUTOMATIC) -> dict[str, str]:
    """{"Sampler": ..., "Schedule type": ...} as A1111 1.10 writes them: the schedule the sampler used when it
    is a named one, "Automatic" when the sampler ran on its own plain default (Euler a, DDIM, ...)."""
    try:
        resolved = resolve_sampler(sampler, schedule_type)
    except InvalidRequest:
        return {"Sampler": str(sampler), "Schedule type": str(schedule_type or AUTOMATIC)}
    plain = resolved.schedule is None or (resolved.schedule == resolved.spec.automatic == "Uniform"
                                          and _schedule_label((schedule_type or "").strip()) == AUTOMATIC)
    return {"Sampler": resolved.name, "Schedule type": AUTOMATIC if plain else resolved.schedule}


def register_scheduler(name: str, cls: type, *, suggested_steps: int = 20, max_steps: int = 150,
                       **overrides) -> SchedulerSpec:
    """Add (or replace) a diffusers scheduler under `name`; `overrides` are passed to `cls.from_config`."""
    if not (isinstance(cls, type) and issubclass(cls, SchedulerMixin)):
        raise TypeError(f"register_scheduler: {cls!r} is not a diffusers SchedulerMixin subclass")
    if not name or not isinstance(name, str):
        raise ValueError("register_scheduler: the name must be a non-empty string")
    spec = _diffusers(name, cls, overrides, int(suggested_steps), int(max_steps))
    SCHEDULERS[name] = spec
    return spec


def build_scheduler(name: str, base_config: Mapping[str, Any]):
    """A fresh diffusers scheduler for one request of a diffusers-form sampler, from the model's saved config."""
    spec = scheduler_spec(name)
    if spec.cls is None:
        raise ValueError(f"{spec.sampler} is one of the studio's own samplers, not a diffusers scheduler")
    accepted = set(inspect.signature(spec.cls.__init__).parameters)
    # Keys the target class does not take (e.g. PNDM's `skip_prk_steps` for DDIM) are dropped so diffusers
    # does not warn about them on every request.
    config = {k: v for k, v in dict(base_config).items() if k in accepted}
    return spec.cls.from_config(config, **dict(spec.overrides))

"""Scheduler (sampler) registry: display name -> how to build that scheduler for one request.

Names follow AUTOMATIC1111, so they round-trip through PNG metadata. Every request gets a brand-new
scheduler built from the model's own saved scheduler config (never from another scheduler's `.config`,
because overrides persist into `.config` and would leak into the next request).

Registering your own scheduler (any diffusers ``SchedulerMixin`` subclass)::

    from diffusers import EulerDiscreteScheduler
    from pipelines.schedulers import register_scheduler

    register_scheduler("Euler trailing", EulerDiscreteScheduler, suggested_steps=20,
                       timestep_spacing="trailing")
    # "Euler trailing" now appears in scheduler_names() and is accepted by GenerationRequest.scheduler.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Mapping

from diffusers import (DDIMScheduler, DDPMScheduler, DEISMultistepScheduler, DPMSolverMultistepScheduler,
                       DPMSolverSDEScheduler, EulerAncestralDiscreteScheduler, EulerDiscreteScheduler,
                       HeunDiscreteScheduler, KDPM2AncestralDiscreteScheduler, KDPM2DiscreteScheduler,
                       LCMScheduler, LMSDiscreteScheduler, PNDMScheduler, UniPCMultistepScheduler)
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from pipelines.dpm_3m_sde import DPMSolver3MSDEScheduler
from pipelines.requests import InvalidRequest


@dataclass(frozen=True)
class SchedulerSpec:
    cls: type
    overrides: Mapping[str, Any] = field(default_factory=dict)
    suggested_steps: int = 20
    max_steps: int = 150
    sampler: str = ""  # A1111 "Sampler:" value (the name without its schedule type)
    schedule_type: str | None = None  # A1111 "Schedule type:" value, e.g. "Karras"


KARRAS = {"use_karras_sigmas": True}
EXPONENTIAL = {"use_exponential_sigmas": True}
SDE_2M = {"algorithm_type": "sde-dpmsolver++"}
SDE_3M = {"algorithm_type": "sde-dpmsolver++", "solver_order": 3}


def _spec(cls, overrides=None, steps=20, *, sampler, schedule_type=None, max_steps=150):
    return SchedulerSpec(cls, dict(overrides or {}), steps, max_steps, sampler, schedule_type)


SCHEDULERS: dict[str, SchedulerSpec] = {
    "Euler a": _spec(EulerAncestralDiscreteScheduler, sampler="Euler a"),
    "Euler": _spec(EulerDiscreteScheduler, sampler="Euler"),
    "Euler Karras": _spec(EulerDiscreteScheduler, KARRAS, sampler="Euler", schedule_type="Karras"),
    "LMS": _spec(LMSDiscreteScheduler, sampler="LMS"),
    "LMS Karras": _spec(LMSDiscreteScheduler, KARRAS, sampler="LMS", schedule_type="Karras"),
    "Heun": _spec(HeunDiscreteScheduler, steps=15, sampler="Heun"),
    "Heun Karras": _spec(HeunDiscreteScheduler, KARRAS, 15, sampler="Heun", schedule_type="Karras"),
    "DPM2": _spec(KDPM2DiscreteScheduler, steps=15, sampler="DPM2"),
    "DPM2 Karras": _spec(KDPM2DiscreteScheduler, KARRAS, 15, sampler="DPM2", schedule_type="Karras"),
    # Ancestral: every step adds fresh noise, and at 15 steps the jumps are too large to settle. On the shapes
    # model's 200 held-out prompts its class is 78/84/88/90/93% at 15/20/25/30/40 steps (Euler a at 20: 90%).
    "DPM2 a": _spec(KDPM2AncestralDiscreteScheduler, steps=30, sampler="DPM2 a"),
    "DPM2 a Karras": _spec(KDPM2AncestralDiscreteScheduler, KARRAS, 30, sampler="DPM2 a",
                           schedule_type="Karras"),
    "DPM++ 2M": _spec(DPMSolverMultistepScheduler, sampler="DPM++ 2M"),
    "DPM++ 2M Karras": _spec(DPMSolverMultistepScheduler, KARRAS, sampler="DPM++ 2M", schedule_type="Karras"),
    "DPM++ 2M SDE": _spec(DPMSolverMultistepScheduler, SDE_2M, sampler="DPM++ 2M SDE"),
    "DPM++ 2M SDE Karras": _spec(DPMSolverMultistepScheduler, {**SDE_2M, **KARRAS}, sampler="DPM++ 2M SDE",
                                 schedule_type="Karras"),
    "DPM++ 2M SDE Exponential": _spec(DPMSolverMultistepScheduler, {**SDE_2M, **EXPONENTIAL},
                                      sampler="DPM++ 2M SDE", schedule_type="Exponential"),
    # diffusers' own third-order SDE step has a wrong term (pipelines/dpm_3m_sde.py)
    "DPM++ 3M SDE": _spec(DPMSolver3MSDEScheduler, SDE_3M, 30, sampler="DPM++ 3M SDE"),
    "DPM++ 3M SDE Karras": _spec(DPMSolver3MSDEScheduler, {**SDE_3M, **KARRAS}, 30, sampler="DPM++ 3M SDE",
                                 schedule_type="Karras"),
    "DPM++ 3M SDE Exponential": _spec(DPMSolver3MSDEScheduler, {**SDE_3M, **EXPONENTIAL}, 30,
                                      sampler="DPM++ 3M SDE", schedule_type="Exponential"),
    "DPM++ SDE": _spec(DPMSolverSDEScheduler, steps=15, sampler="DPM++ SDE"),
    "DPM++ SDE Karras": _spec(DPMSolverSDEScheduler, KARRAS, 15, sampler="DPM++ SDE", schedule_type="Karras"),
    "DDIM": _spec(DDIMScheduler, sampler="DDIM"),
    "PLMS": _spec(PNDMScheduler, {"skip_prk_steps": True}, sampler="PLMS"),
    "UniPC": _spec(UniPCMultistepScheduler, sampler="UniPC"),
    "DEIS": _spec(DEISMultistepScheduler, sampler="DEIS"),
    "DDPM": _spec(DDPMScheduler, steps=50, sampler="DDPM"),
    # LCM sets timesteps from its `original_inference_steps` (50): more steps than that are refused.
    "LCM": _spec(LCMScheduler, steps=4, sampler="LCM", max_steps=50),
}

# A1111 "Schedule type" values that mean "the sampler's own default schedule".
DEFAULT_SCHEDULE_TYPES = ("", "Automatic", "Uniform", "Default")

# Names other tools write (k-diffusion / ComfyUI / InvokeAI style), lower-cased, mapped to ours.
ALIASES = {
    "k_euler_a": "Euler a", "euler_a": "Euler a", "euler_ancestral": "Euler a", "k_euler": "Euler",
    "euler": "Euler", "k_lms": "LMS", "lms": "LMS", "k_heun": "Heun", "heun": "Heun", "k_dpm_2": "DPM2",
    "dpm_2": "DPM2", "k_dpm_2_a": "DPM2 a", "dpm_2_ancestral": "DPM2 a", "dpmpp_2m": "DPM++ 2M",
    "k_dpmpp_2m": "DPM++ 2M", "dpmpp_2m_sde": "DPM++ 2M SDE", "dpmpp_3m_sde": "DPM++ 3M SDE",
    "dpmpp_sde": "DPM++ SDE", "ddim": "DDIM", "plms": "PLMS", "pndm": "PLMS", "uni_pc": "UniPC",
    "unipc": "UniPC", "deis": "DEIS", "ddpm": "DDPM", "lcm": "LCM", "kdpm_2": "DPM2", "kdpm_2_a": "DPM2 a",
}


def scheduler_names() -> list[str]:
    return list(SCHEDULERS)


def scheduler_spec(name: str) -> SchedulerSpec:
    try:
        return SCHEDULERS[name]
    except KeyError:
        raise InvalidRequest("scheduler", f"unknown scheduler {name!r}; choose one of: "
                             + ", ".join(SCHEDULERS)) from None


def suggested_steps(name: str) -> int:
    return scheduler_spec(name).suggested_steps


def register_scheduler(name: str, cls: type, *, suggested_steps: int = 20, max_steps: int = 150,
                       **overrides) -> SchedulerSpec:
    """Add (or replace) a scheduler under `name`; `overrides` are passed to `cls.from_config`."""
    if not (isinstance(cls, type) and issubclass(cls, SchedulerMixin)):
        raise TypeError(f"register_scheduler: {cls!r} is not a diffusers SchedulerMixin subclass")
    if not name or not isinstance(name, str):
        raise ValueError("register_scheduler: the name must be a non-empty string")
    spec = SchedulerSpec(cls, dict(overrides), int(suggested_steps), int(max_steps), name, None)
    SCHEDULERS[name] = spec
    return spec


def build_scheduler(name: str, base_config: Mapping[str, Any], *, noise_seeds: list[int] | None = None):
    """A fresh scheduler for one request, derived from the model's saved base config.

    `noise_seeds` seeds the Brownian-tree noise of "DPM++ SDE" (it does not draw from the generator),
    so that sampler is reproducible too.
    """
    spec = scheduler_spec(name)
    accepted = set(inspect.signature(spec.cls.__init__).parameters)
    # Keys the target class does not take (e.g. PNDM's `skip_prk_steps` for Euler) are dropped so
    # diffusers does not warn about them on every request.
    config = {k: v for k, v in dict(base_config).items() if k in accepted}
    overrides = dict(spec.overrides)
    if noise_seeds is not None and "noise_sampler_seed" in accepted:
        overrides["noise_sampler_seed"] = noise_seeds[0] if len(noise_seeds) == 1 else list(noise_seeds)
    return spec.cls.from_config(config, **overrides)


def resolve_scheduler_name(sampler: str, schedule_type: str | None = None) -> str:
    """Map a sampler name as other studios write it (plus an optional A1111 "Schedule type") to ours.

    resolve_scheduler_name("DPM++ 2M", "Karras") == "DPM++ 2M Karras";
    resolve_scheduler_name("DPM++ 2M Karras") == "DPM++ 2M Karras" (older combined names);
    resolve_scheduler_name("dpmpp_2m", "karras") == "DPM++ 2M Karras" (ComfyUI-style names).
    """
    raw = (sampler or "").strip()
    base = _canonical(raw)
    if base is None:
        raise InvalidRequest("scheduler", f"unknown sampler {raw!r}; choose one of: " + ", ".join(SCHEDULERS))
    schedule = (schedule_type or "").strip()
    if schedule.lower() in (s.lower() for s in DEFAULT_SCHEDULE_TYPES):
        return base
    spec = SCHEDULERS[base]
    if spec.schedule_type and spec.schedule_type.lower() == schedule.lower():
        return base  # "DPM++ 2M Karras" with "Schedule type: Karras" says the same thing twice
    for name, candidate in SCHEDULERS.items():
        if (candidate.sampler == (spec.sampler or base)
                and (candidate.schedule_type or "").lower() == schedule.lower()):
            return name
    offered = sorted({s.schedule_type for s in SCHEDULERS.values()
                      if s.sampler == spec.sampler and s.schedule_type})
    raise InvalidRequest("scheduler", f"schedule type {schedule!r} is not available for {base!r}; "
                         f"available: {', '.join(['Automatic', *offered])}")


def _canonical(raw: str) -> str | None:
    if raw in SCHEDULERS:
        return raw
    lowered = {name.lower(): name for name in SCHEDULERS}
    if raw.lower() in lowered:
        return lowered[raw.lower()]
    key = raw.lower().replace(" ", "_").replace("-", "_")
    for suffix, extra in (("_karras", " Karras"), ("_k", " Karras"), ("", "")):  # InvokeAI writes "_k"
        if key.endswith(suffix) and key[: len(key) - len(suffix)] in ALIASES:
            name = ALIASES[key[: len(key) - len(suffix)]] + extra
            if name in SCHEDULERS:
                return name
    return None


def a1111_sampler_fields(name: str) -> dict[str, str]:
    """{"Sampler": ..., "Schedule type": ...} as A1111 1.10 writes them for one of our names."""
    spec = SCHEDULERS.get(name)
    if spec is None:
        return {"Sampler": name}
    out = {"Sampler": spec.sampler or name}
    if spec.schedule_type:
        out["Schedule type"] = spec.schedule_type
    return out

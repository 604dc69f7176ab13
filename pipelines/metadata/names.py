"""Sampler names as other studios write them -> AUTOMATIC1111's (sampler, schedule type), as plain strings.

    to_a1111("euler_ancestral", "karras")        == ("Euler a", "Karras")        # ComfyUI, SwarmUI, Fooocus
    to_a1111("DPM++ 2M Karras")                   == ("DPM++ 2M", "Karras")       # old A1111 combined names
    to_a1111("Euler Ancestral Karras")            == ("Euler a", "Karras")        # Stability Matrix
    to_a1111("dpmpp_2m_k") / to_a1111("k_lms")    == ("DPM++ 2M", "Karras") / ("LMS", ...)   # InvokeAI, NovelAI
    to_a1111("heunpp2", "linear_quadratic")       == ("heunpp2", "linear_quadratic")  # no A1111 name: as written

A name with no A1111 equivalent stays exactly as written, so the form refuses it by name later; nothing here
checks the studio's scheduler registry. `unstated` says what a missing schedule means for that source.
"""
from __future__ import annotations

from typing import NamedTuple

# A1111 1.10's samplers, plus the diffusers-only ones the studio also offers (DEIS, DDPM).
A1111_SAMPLERS = ("DPM++ 2M", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 2M SDE Heun", "DPM++ 2S a", "DPM++ 3M SDE",
                  "Euler a", "Euler", "LMS", "Heun", "DPM2", "DPM2 a", "DPM fast", "DPM adaptive", "Restart",
                  "DDIM", "DDIM CFG++", "PLMS", "UniPC", "LCM")
STUDIO_ONLY_SAMPLERS = ("DEIS", "DDPM")
SCHEDULE_TYPES = ("Automatic", "Uniform", "Karras", "Exponential", "Polyexponential", "SGM Uniform", "KL Optimal",
                  "Align Your Steps", "Simple", "Normal", "DDIM", "Beta", "Align Your Steps GITS",
                  "Align Your Steps 11", "Align Your Steps 32")

# What A1111 1.10's "Automatic" resolves to for each sampler, and writes as "Schedule type" (sampler options
# in modules/sd_samplers_kdiffusion.py). Samplers not listed have no default: A1111 writes no schedule type.
AUTOMATIC_SCHEDULE = {"DPM++ 2M": "Karras", "DPM++ SDE": "Karras", "DPM++ 2M SDE": "Exponential",
                      "DPM++ 2M SDE Heun": "Exponential", "DPM++ 2S a": "Karras", "DPM++ 3M SDE": "Exponential",
                      "DPM2": "Karras", "DPM2 a": "Karras", "Restart": "Karras"}

# Lower-case spellings -> A1111 name: k-diffusion function names (A1111 aliases, ComfyUI, NovelAI with "k_"),
# InvokeAI's diffusers names and Stability Matrix's display names.
SAMPLER_ALIASES = {
    "euler": "Euler", "euler_ancestral": "Euler a", "euler_a": "Euler a", "euler ancestral": "Euler a",
    "heun": "Heun", "lms": "LMS", "dpm_2": "DPM2", "kdpm_2": "DPM2", "dpm 2": "DPM2", "dpm2": "DPM2",
    "dpm_2_ancestral": "DPM2 a", "dpm_2_a": "DPM2 a", "kdpm_2_a": "DPM2 a", "dpm 2 ancestral": "DPM2 a",
    "dpm2_a": "DPM2 a",
    "dpm_fast": "DPM fast", "dpm_adaptive": "DPM adaptive", "dpm_ad": "DPM adaptive",
    "dpmpp_2s_ancestral": "DPM++ 2S a", "dpmpp_2s_a": "DPM++ 2S a", "dpm++ 2s ancestral": "DPM++ 2S a",
    "dpmpp_2_a": "DPM++ 2S a",  # InvokeAI 2.x "k_dpmpp_2_a"
    "dpmpp_2": "DPM++ 2M",  # InvokeAI 2.x "k_dpmpp_2"
    "dpmpp_sde": "DPM++ SDE", "dpmpp_sde_gpu": "DPM++ SDE", "dpm++ sde gpu": "DPM++ SDE",
    "dpmpp_2m": "DPM++ 2M", "dpmpp_2m_sde": "DPM++ 2M SDE", "dpmpp_2m_sde_gpu": "DPM++ 2M SDE",
    "dpm++ 2m sde gpu": "DPM++ 2M SDE", "dpmpp_2m_sde_heun": "DPM++ 2M SDE Heun",
    "dpmpp_2m_sde_heun_gpu": "DPM++ 2M SDE Heun", "dpmpp_3m_sde": "DPM++ 3M SDE",
    "dpmpp_3m_sde_gpu": "DPM++ 3M SDE", "dpm++ 3m sde gpu": "DPM++ 3M SDE",
    "ddim": "DDIM", "ddim_v3": "DDIM", "plms": "PLMS", "pndm": "PLMS", "uni_pc": "UniPC", "unipc": "UniPC",
    "uni_pc_bh2": "UniPC", "unipc bh2": "UniPC", "lcm": "LCM", "restart": "Restart", "ddpm": "DDPM",
    "deis": "DEIS",
}
# Spellings that name a variant A1111 has only as a setting: the reader shows it, never drops it.
SAMPLER_VARIANTS = {"uni_pc_bh2": ("UniPC variant", "bh2"), "unipc bh2": ("UniPC variant", "bh2")}

# Lower-case spellings -> A1111 schedule type label: A1111's own names, ComfyUI's / Fooocus' scheduler names,
# Stability Matrix's display names.
SCHEDULE_ALIASES = {label.lower(): label for label in SCHEDULE_TYPES} | {
    "sgm_uniform": "SGM Uniform", "kl_optimal": "KL Optimal", "align_your_steps": "Align Your Steps",
    "ays": "Align Your Steps", "align_your_steps_gits": "Align Your Steps GITS",
    "align_your_steps_11": "Align Your Steps 11", "align_your_steps_32": "Align Your Steps 32",
    "ddim_uniform": "DDIM", "ddim uniform": "DDIM",
}
# Name endings that carry the schedule: "DPM++ 2M Karras", "Euler Ancestral SGM Uniform", InvokeAI "euler_k".
_SUFFIXES = {" " + alias: label for alias, label in SCHEDULE_ALIASES.items()} | {"_k": "Karras", "_karras": "Karras"}
_KNOWN = {name.lower(): name for name in (*A1111_SAMPLERS, *STUDIO_ONLY_SAMPLERS)}

PLAIN = "plain"  # for `unstated`: no schedule means evenly spaced sigmas (InvokeAI, NovelAI "native", pre-1.9 A1111)


class A1111Name(NamedTuple):
    sampler: str
    schedule_type: str


def sampler_base(name: str) -> str | None:
    """The A1111 name of a sampler spelled without a schedule, or None."""
    key = str(name or "").strip().lower()
    if key in _KNOWN:
        return _KNOWN[key]
    key = key.removeprefix("k_").removeprefix("sample_").replace("-", "_")  # "sample_": early ComfyUI
    return SAMPLER_ALIASES.get(key) or SAMPLER_ALIASES.get(key.replace("_", " "))


def schedule_label(name: str) -> str:
    """The A1111 label of a schedule name (ComfyUI, A1111, Stability Matrix spellings); unknown ones as written."""
    text = str(name or "").strip()
    return SCHEDULE_ALIASES.get(text.lower(), text)


def is_known_sampler(name: str) -> bool:
    return name in _KNOWN.values()


def is_known_schedule(label: str) -> bool:
    return label in SCHEDULE_TYPES


def split_combined(name: str) -> A1111Name | None:
    """("DPM++ 2M", "Karras") for "DPM++ 2M Karras" (also "dpmpp_2m_k", "Euler Ancestral Karras"); else None."""
    raw = str(name or "").strip()
    low = raw.lower()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if low.endswith(suffix) and len(low) > len(suffix):
            base = sampler_base(raw[: len(raw) - len(suffix)])
            if base:
                return A1111Name(base, _SUFFIXES[suffix])
    return None


def plain_schedule(sampler: str) -> str:
    """The label for evenly spaced sigmas: "Uniform" where A1111's Automatic would mean something else."""
    return "Uniform" if sampler in AUTOMATIC_SCHEDULE else "Automatic"


def to_a1111(sampler: str, scheduler: str | None = None, *, unstated: str = "Automatic") -> A1111Name:
    """A foreign sampler (+ scheduler) naming as (A1111 sampler name, A1111 schedule type label).

    A schedule written in the sampler's name wins over `scheduler`, as in A1111's own reader. Without either,
    the schedule is `unstated` (a label, or PLAIN for sources whose plain names mean evenly spaced sigmas).
    """
    raw = str(sampler or "").strip()
    base = sampler_base(raw)
    combined = None if base else split_combined(raw)
    if combined:
        return combined
    if scheduler is not None and str(scheduler).strip():
        schedule = schedule_label(scheduler)
    else:
        schedule = plain_schedule(base or raw) if unstated == PLAIN else unstated
    return A1111Name(base or raw, schedule)


def variant_of(sampler: str) -> tuple[str, str] | None:
    """(label, value) of a sampler variant that the A1111 name does not carry, e.g. UniPC's "bh2"."""
    return SAMPLER_VARIANTS.get(str(sampler or "").strip().lower().removeprefix("k_"))

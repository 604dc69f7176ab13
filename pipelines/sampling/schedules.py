"""AUTOMATIC1111's schedule types: how `steps` noise levels are spread between the model's sigma_max and 0.

Each function takes (steps, table, family) and returns steps + 1 sigmas, decreasing, normally ending in 0;
`sigma_schedule` applies the choices A1111 makes around them (the sampler's "Automatic" schedule, the dropped
next-to-last sigma of DPM2 and DPM++ 3M SDE). The names are A1111 1.10's "Schedule type" labels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from pipelines.sampling.noise_table import NoiseTable

ScheduleFunction = Callable[[int, NoiseTable, str], torch.Tensor]


def _with_zero(sigmas) -> torch.Tensor:
    sigmas = torch.as_tensor(sigmas, dtype=torch.float32)
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def uniform(n: int, table: NoiseTable, family: str) -> torch.Tensor:
    """Evenly spaced (fractional) timesteps over the whole training range: A1111's default."""
    last = len(table.sigmas) - 1
    return _with_zero(table.t_to_sigma(torch.linspace(last, 0, n)))


def karras(n: int, table: NoiseTable, family: str, rho: float = 7.0) -> torch.Tensor:
    """Karras et al. (2022): evenly spaced in sigma^(1/rho)."""
    ramp = torch.linspace(0, 1, n)
    top, bottom = table.sigma_max ** (1 / rho), table.sigma_min ** (1 / rho)
    return _with_zero((top + ramp * (bottom - top)) ** rho)


def exponential(n: int, table: NoiseTable, family: str) -> torch.Tensor:
    """Evenly spaced in log-sigma."""
    return _with_zero(torch.linspace(math.log(table.sigma_max), math.log(table.sigma_min), n).exp())


def polyexponential(n: int, table: NoiseTable, family: str, rho: float = 1.0) -> torch.Tensor:
    ramp = torch.linspace(1, 0, n) ** rho
    low, high = math.log(table.sigma_min), math.log(table.sigma_max)
    return _with_zero(torch.exp(ramp * (high - low) + low))


def _timestep_range(table: NoiseTable) -> tuple[float, float]:
    return (float(table.sigma_to_t(torch.tensor(table.sigma_max))),
            float(table.sigma_to_t(torch.tensor(table.sigma_min))))


def sgm_uniform(n: int, table: NoiseTable, family: str) -> torch.Tensor:
    """Evenly spaced timesteps, the last one left out (as Stability's sgm code spaces them)."""
    start, end = _timestep_range(table)
    return _with_zero(table.t_to_sigma(torch.linspace(start, end, n + 1)[:-1]))


def normal(n: int, table: NoiseTable, family: str) -> torch.Tensor:
    """Evenly spaced timesteps from the top level to the bottom one, both included (ComfyUI's "normal")."""
    start, end = _timestep_range(table)
    return _with_zero(table.t_to_sigma(torch.linspace(start, end, n)))


def simple(n: int, table: NoiseTable, family: str) -> torch.Tensor:
    """Every (T/n)-th training level from the top (ComfyUI's "simple")."""
    stride = len(table.sigmas) / n
    return _with_zero([float(table.sigmas[-(1 + int(k * stride))]) for k in range(n)])


def ddim_uniform(n: int, table: NoiseTable, family: str) -> torch.Tensor:
    """The levels DDIM's uniform timestep spacing visits (may give a step more or less than asked)."""
    stride = max(len(table.sigmas) // n, 1)
    picked = [float(table.sigmas[k]) for k in range(1, len(table.sigmas), stride)]
    return _with_zero(picked[::-1])


def kl_optimal(n: int, table: NoiseTable, family: str) -> torch.Tensor:
    """Evenly spaced in arctan(sigma); ends at sigma_min rather than 0, as A1111 has it."""
    low, high = math.atan(table.sigma_min), math.atan(table.sigma_max)
    fraction = torch.arange(n + 1) / n
    return torch.tan(fraction * low + (1.0 - fraction) * high).float()


def align_your_steps(n: int, table: NoiseTable, family: str) -> torch.Tensor:
    """NVIDIA's published 10-step sigmas for the family (pipelines/families.py); other step counts
    interpolate them log-linearly."""
    from pipelines.families import get_family

    levels = list(get_family(family).align_your_steps)
    if n == len(levels):
        return _with_zero(levels)
    logs = np.log(np.asarray(levels[::-1]))
    spread = np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(levels)), logs)
    return _with_zero(np.exp(spread)[::-1].copy())


BETA_ALPHA = BETA_BETA = 0.6  # A1111's defaults for "Beta" (Lee et al. 2024, arXiv:2407.12173)


def beta(n: int, table: NoiseTable, family: str) -> torch.Tensor:
    from scipy import stats

    quantiles = [stats.beta.ppf(1 - x, BETA_ALPHA, BETA_BETA) for x in np.linspace(0, 1, n)]
    return _with_zero([table.sigma_min + q * (table.sigma_max - table.sigma_min) for q in quantiles])


@dataclass(frozen=True)
class ScheduleType:
    label: str  # A1111's label, as written in "Schedule type:"
    function: ScheduleFunction
    comfy_name: str  # ComfyUI's `scheduler` name of the same schedule


SCHEDULE_TYPES: dict[str, ScheduleType] = {s.label: s for s in (
    ScheduleType("Uniform", uniform, "uniform"),
    ScheduleType("Karras", karras, "karras"),
    ScheduleType("Exponential", exponential, "exponential"),
    ScheduleType("Polyexponential", polyexponential, "polyexponential"),
    ScheduleType("SGM Uniform", sgm_uniform, "sgm_uniform"),
    ScheduleType("KL Optimal", kl_optimal, "kl_optimal"),
    ScheduleType("Align Your Steps", align_your_steps, "align_your_steps"),
    ScheduleType("Simple", simple, "simple"),
    ScheduleType("Normal", normal, "normal"),
    ScheduleType("DDIM", ddim_uniform, "ddim_uniform"),
    ScheduleType("Beta", beta, "beta"),
)}
AUTOMATIC = "Automatic"


def sigma_schedule(schedule: str, steps: int, table: NoiseTable, family: str, *,
                   drop_penultimate: bool = False) -> torch.Tensor:
    """The sigmas A1111 samples on: `steps` steps (one more computed, then the next-to-last dropped, for
    samplers that A1111 marks so), float32 on the CPU."""
    n = steps + 1 if drop_penultimate else steps
    sigmas = SCHEDULE_TYPES[schedule].function(n, table, family)
    if drop_penultimate:
        sigmas = torch.cat([sigmas[:-2], sigmas[-1:]])
    return sigmas

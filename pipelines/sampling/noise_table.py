"""A model's discrete noise levels, as k-diffusion (and so AUTOMATIC1111 and ComfyUI) sees them.

A DDPM-trained model knows 1000 timesteps; timestep t has noise level sigma_t = sqrt((1 - abar_t) / abar_t),
where abar is the cumulative product of (1 - beta). Samplers work in sigma; the UNet is asked at the
(fractional) timestep whose log-sigma matches, interpolated linearly between neighbours.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch


def _betas(config: Mapping[str, Any]) -> np.ndarray:
    """The training betas of a diffusers scheduler config, in float64 (as the original LDM code makes them)."""
    n = int(config.get("num_train_timesteps", 1000))
    start, end = float(config.get("beta_start", 0.00085)), float(config.get("beta_end", 0.012))
    schedule = config.get("beta_schedule", "scaled_linear")
    trained = config.get("trained_betas")
    if trained is not None:
        return np.asarray(trained, dtype=np.float64)
    if schedule == "scaled_linear":
        return np.linspace(start ** 0.5, end ** 0.5, n, dtype=np.float64) ** 2
    if schedule == "linear":
        return np.linspace(start, end, n, dtype=np.float64)
    if schedule == "squaredcos_cap_v2":
        def abar(t):
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
        return np.array([min(1 - abar((i + 1) / n) / abar(i / n), 0.999) for i in range(n)], dtype=np.float64)
    raise ValueError(f"beta_schedule {schedule!r} is not supported by the k-diffusion samplers")


@dataclass(frozen=True)
class NoiseTable:
    sigmas: torch.Tensor  # (T,) float32, increasing: sigmas[0] is sigma_min, sigmas[-1] sigma_max
    log_sigmas: torch.Tensor
    prediction_type: str = "epsilon"  # or "v_prediction"

    @classmethod
    def from_scheduler_config(cls, config: Mapping[str, Any]) -> "NoiseTable":
        alphas_cumprod = np.cumprod(1.0 - _betas(config), axis=0)
        abar = torch.tensor(alphas_cumprod, dtype=torch.float32)  # the LDM buffer is float32
        sigmas = ((1 - abar) / abar) ** 0.5
        prediction = config.get("prediction_type", "epsilon") or "epsilon"
        if prediction not in ("epsilon", "v_prediction"):
            raise ValueError(f"prediction_type {prediction!r} is not supported by the k-diffusion samplers")
        return cls(sigmas, sigmas.log(), prediction)

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    def sigma_to_t(self, sigma: torch.Tensor) -> torch.Tensor:
        """The fractional timestep of each sigma: linear in log-sigma between the two neighbouring levels."""
        log_sigma = sigma.float().log().reshape(-1)
        distances = log_sigma[None, :] - self.log_sigmas[:, None]  # (T, N)
        low = distances.ge(0).cumsum(dim=0).argmax(dim=0).clamp(max=len(self.log_sigmas) - 2)
        high = low + 1
        low_value, high_value = self.log_sigmas[low], self.log_sigmas[high]
        w = ((low_value - log_sigma) / (low_value - high_value)).clamp(0, 1)
        return ((1 - w) * low + w * high).reshape(sigma.shape)

    def t_to_sigma(self, t: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.float32)
        low, high, w = t.floor().long(), t.ceil().long(), t.frac()
        return ((1 - w) * self.log_sigmas[low] + w * self.log_sigmas[high]).exp()

    def model_scalings(self, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(c_skip, c_out, c_in) so that denoised = c_skip * x + c_out * model(c_in * x, t(sigma))."""
        c_in = 1 / (sigma ** 2 + 1) ** 0.5
        if self.prediction_type == "v_prediction":
            return 1 / (sigma ** 2 + 1), -sigma * c_in, c_in
        return torch.ones_like(sigma), -sigma, c_in

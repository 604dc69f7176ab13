"""Sampling that starts from a picture's latent instead of pure noise, and how many steps it takes.

Steps are counted as AUTOMATIC1111 counts them for the k-diffusion samplers (sd_samplers_common's
`setup_img2img_steps`, with its "img2img_fix_steps" option off): with strength d and N steps, the schedule is
made for N steps and its last t_enc + 1 are run, t_enc = int(min(d, 0.999) * N), starting at
x = init + noise * sigma (so 20 steps at 0.6 run 13). The hires fix's second pass is asked for an exact
count, as A1111 asks it: a schedule of int(n / min(d, 0.999)) steps, its last n run.
The diffusers-form samplers (DDIM, PLMS, UniPC, ...) follow diffusers' img2img pipelines instead: the last
min(int(N * d), N) of the scheduler's N timesteps, the init latent noised by `scheduler.add_noise`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from pipelines import previews


def a1111_steps(steps: int, strength: float, exact: bool = False) -> tuple[int, int]:
    """(steps the schedule is made for, steps run) for a k-diffusion sampler."""
    d = min(strength, 0.999)
    if exact:
        return (int(steps / d) if strength > 0 else 0), steps
    return steps, int(d * steps) + 1


def diffusers_steps(steps: int, strength: float, exact: bool = False) -> tuple[int, int]:
    """(scheduler steps, steps run) for a diffusers-form sampler."""
    if exact:
        return (int(steps / min(strength, 0.999)) if strength > 0 else 0), steps
    return steps, min(int(steps * strength), steps)


@dataclass(frozen=True)
class Start:
    """Where one request's images start: the init picture's latent distribution (or a latent, for the hires
    fix's latent upscale), the strength, and for inpainting the latents kept as they are."""

    source: Any  # a diffusers latent distribution, or a pipeline-latent tensor
    strength: float
    exact_steps: bool = False  # the hires fix: run exactly `steps` steps
    keep: torch.Tensor | None = None  # (1, 1, h, w): 1 where the original latent is kept (inpainting)
    masked_content: str = "original"

    def steps(self, steps: int, k_sampler: bool) -> tuple[int, int]:
        return (a1111_steps if k_sampler else diffusers_steps)(steps, self.strength, self.exact_steps)

    def latents(self, vae, generator: torch.Generator, shape, device, dtype) -> torch.Tensor:
        """The init latent of one image: a sample drawn with the image's generator (after its starting
        noise); "latent noise" puts fresh noise in the masked area, "latent nothing" zeros."""
        if isinstance(self.source, torch.Tensor):
            init = self.source
        else:
            init = previews.sample_latents(vae, self.source, generator)
        init = init.to(device, dtype)
        if self.keep is not None and self.masked_content in ("latent noise", "latent nothing"):
            keep = self.keep.to(device, dtype)
            fresh = torch.randn(shape, generator=generator, dtype=torch.float32).to(device, dtype) \
                if self.masked_content == "latent noise" else torch.zeros_like(init)
            init = init * keep + fresh * (1 - keep)
        return init

    def blended(self, latents: torch.Tensor, init: torch.Tensor) -> torch.Tensor:
        """The kept latents put back after sampling (A1111: samples * nmask + init_latent * mask)."""
        if self.keep is None:
            return latents
        keep = self.keep.to(latents.device, latents.dtype)
        return latents * (1 - keep) + init.to(latents.dtype) * keep

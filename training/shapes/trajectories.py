"""The states a sampler feeds the UNet along its own trajectories, for training on them.

Training noises real latents (`add_noise`); a sampler instead feeds the UNet latents it made itself, and the
stochastic ones (DPM2 a, the SDE samplers) add fresh noise at every step. A student that matches its teacher on
the first kind can still drift on the second: `calibrate_guidance --trajectories` trains on both."""
from __future__ import annotations

import torch

from pipelines.schedulers import build_scheduler

from .architecture import SCHEDULER


def parse_sampler(job: str) -> tuple[str, int]:
    """"DPM++ 3M SDE:30" -> ("DPM++ 3M SDE", 30)."""
    name, _, steps = job.rpartition(":")
    if not name or not steps.isdigit():
        raise ValueError(f"--trajectories takes SAMPLER:STEPS, e.g. 'DPM++ 3M SDE:30'; got {job!r}")
    return name, int(steps)


@torch.no_grad()
def sampler_states(unet, contexts: torch.Tensor, empty: torch.Tensor, sampler: str, steps: int,
                   guidance: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Run `sampler` for `steps` at CFG `guidance` from seeded noise, one trajectory per row of `contexts`
    (text-encoder states), and return every UNet input it made, (len(contexts), n, 4, 16, 16), with its
    timestep, (len(contexts), n); n is the number of model calls (twice `steps` for DPM2's)."""
    generator = torch.Generator().manual_seed(seed)
    scheduler = build_scheduler(sampler, SCHEDULER, noise_seeds=[seed])
    scheduler.set_timesteps(steps)
    size = unet.config.sample_size
    latents = torch.randn((len(contexts), unet.config.in_channels, size, size), generator=generator)
    latents = latents.to(contexts.device) * scheduler.init_noise_sigma
    both = torch.cat([empty.expand_as(contexts), contexts])
    states, times = [], []
    for t in scheduler.timesteps:
        x = scheduler.scale_model_input(latents, t)
        states.append(x)
        times.append(torch.full((len(x),), float(t)))
        uncond, cond = unet(torch.cat([x, x]), t, encoder_hidden_states=both).sample.chunk(2)
        latents = scheduler.step(uncond + guidance * (cond - uncond), t, latents, generator=generator).prev_sample
    return torch.stack(states, 1).cpu(), torch.stack(times, 1)

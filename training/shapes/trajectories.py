"""The states a sampler feeds the UNet along its own trajectories, for training on them.

Training noises real latents (`add_noise`); a sampler instead feeds the UNet latents it made itself, and the
stochastic ones (DPM2 a, the SDE samplers) add fresh noise at every step. A student that matches its teacher on
the first kind can still drift on the second: `calibrate_guidance --trajectories` trains on both."""
from __future__ import annotations

import torch

from pipelines.sampling.guided_unet import GuidedUNet
from pipelines.sampling.loops import run_diffusers_scheduler, run_k_sampler
from pipelines.sampling.noise_table import NoiseTable
from pipelines.sampling.schedules import sigma_schedule
from pipelines.schedulers import build_scheduler, resolve_sampler

from .architecture import SCHEDULER


def parse_sampler(job: str) -> tuple[str, int]:
    """"DPM++ 3M SDE:30" -> ("DPM++ 3M SDE", 30)."""
    name, _, steps = job.rpartition(":")
    if not name or not steps.isdigit():
        raise ValueError(f"--trajectories takes SAMPLER:STEPS, e.g. 'DPM++ 3M SDE:30'; got {job!r}")
    return name, int(steps)


class _Recorder:
    """The UNet, remembering each input it is given (one branch of the guided pair) and its timestep."""

    def __init__(self, unet):
        self.unet, self.states, self.times = unet, [], []

    def __call__(self, sample, timestep, **kwargs):
        self.states.append(sample[:1].clone())
        self.times.append(float(timestep.reshape(-1)[0]))
        return self.unet(sample, timestep, **kwargs)


@torch.no_grad()
def sampler_states(unet, contexts: torch.Tensor, empty: torch.Tensor, sampler: str, steps: int,
                   guidance: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Run `sampler` (the studio's own, on its Automatic schedule) for `steps` at CFG `guidance`, one trajectory
    per row of `contexts` (text-encoder states) from the noise of seed + row, and return every UNet input it
    made, (len(contexts), n, 4, 16, 16), with its (fractional) timestep, (len(contexts), n); n is the number
    of model calls (twice `steps` for DPM2's)."""
    resolved = resolve_sampler(sampler)
    size = unet.config.sample_size
    states, times = [], []
    for row in range(len(contexts)):
        recorder = _Recorder(unet)
        guided = GuidedUNet(recorder, torch.cat([empty, contexts[row:row + 1]]), guidance, True)
        generator = torch.Generator().manual_seed(seed + row)
        shape = (1, unet.config.in_channels, size, size)
        ignore = lambda step, total, latents: None  # noqa: E731
        if resolved.spec.is_k_sampler:
            table = NoiseTable.from_scheduler_config(SCHEDULER)
            sigmas = sigma_schedule(resolved.schedule, steps, table, "shapes",
                                    drop_penultimate=resolved.spec.drop_penultimate)
            noise = torch.randn(shape, generator=generator).to(contexts.device)
            run_k_sampler(resolved.spec.function, guided, table, sigmas, noise, generator, seed + row, ignore)
        else:
            scheduler = build_scheduler(resolved.name, SCHEDULER)
            latents = torch.randn(shape, generator=generator).to(contexts.device) * scheduler.init_noise_sigma
            run_diffusers_scheduler(scheduler, guided, steps, latents, generator, ignore)
        states.append(torch.cat(recorder.states))
        times.append(torch.tensor(recorder.times))
    return torch.stack(states).cpu(), torch.stack(times)

"""The two ways an image is denoised: a k-diffusion sampler on an A1111 sigma schedule, or a diffusers
scheduler's own step loop (DDIM, PLMS, UniPC, ...) run exactly as diffusers' pipelines run it.

Both report every step through `on_step(step, total, preview_latents)` (1-based step; preview_latents is
the current estimate of the clean latent when the sampler has one) and end early, returning the last
estimate, when `on_step` raises `SkipImage` (A1111's Skip).
"""
from __future__ import annotations

import inspect
from typing import Callable

import torch

from pipelines.sampling.brownian import SeededNoise
from pipelines.sampling.guided_unet import GuidedUNet, KDenoiser
from pipelines.sampling.noise_table import NoiseTable

OnStep = Callable[[int, int, torch.Tensor], None]


class SkipImage(Exception):
    """Raised by a step callback: finish this image with what it has and go on with the next."""


def seeded_noise(generator: torch.Generator, seed: int, span: torch.Tensor, like: torch.Tensor) -> SeededNoise:
    """One image's noise source over the noise levels of the schedule `span`."""
    positive = span[span > 0]
    return SeededNoise(generator, seed, positive.min(), span.max(), like=like)


def run_k_sampler(sampler, guided: GuidedUNet, table: NoiseTable, sigmas: torch.Tensor, noise: torch.Tensor,
                  generator: torch.Generator, seed: int, on_step: OnStep, *,
                  start: torch.Tensor | None = None, blend: tuple[torch.Tensor, torch.Tensor] | None = None,
                  span: torch.Tensor | None = None, source=None) -> torch.Tensor:
    """Sample from `noise` (standard normal, float32) down `sigmas`; returns the clean latent (float32).

    As A1111: text-to-image starts at noise * sigmas[0]; with `start` (image to image), at
    start + noise * sigmas[0], `sigmas` being the tail of the schedule `span`. SDE samplers read a Brownian
    path seeded by `seed` over the range of `span` (default `sigmas`). `blend` = (init latent, keep mask)
    holds the kept area at the init latent in every denoised estimate (inpainting). `source`: the noise
    source of a batch of images (pipelines/sampling/batched.py); default the image's own, from `generator`.
    """
    x = noise * sigmas[0] if start is None else start + noise * sigmas[0]
    span = sigmas if span is None else span
    if source is None:
        source = seeded_noise(generator, seed, span, like=x)
    denoiser = KDenoiser(guided, table, blend=blend)
    total = len(sigmas) - 1
    last = {"denoised": x}

    def step_done(i: int, current: torch.Tensor, denoised: torch.Tensor) -> None:
        last["denoised"] = denoised
        guided.step = i + 1
        on_step(i + 1, total, denoised)

    guided.step = 0
    try:
        return sampler(denoiser, x, sigmas.to(x.device), source, step_done)
    except SkipImage:
        return last["denoised"]


def run_diffusers_scheduler(scheduler, guided: GuidedUNet, steps: int, latents: torch.Tensor,
                            generator: torch.Generator, on_step: OnStep, *, eta: float = 0.0,
                            timesteps: torch.Tensor | None = None,
                            blend: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """diffusers' denoising loop for `scheduler` from `latents` (noise already scaled by init_noise_sigma),
    in the UNet's dtype, as StableDiffusionPipeline.__call__ runs it.

    Image to image passes the `timesteps` still to run (the scheduler already set up, as diffusers' img2img
    pipelines do); `blend` = (init latent, keep mask, noise) puts the kept area back, noised to the next
    timestep, after every step (diffusers' inpainting pipeline with a 4-channel UNet)."""
    if timesteps is None:
        scheduler.set_timesteps(steps, device=latents.device)
        timesteps = scheduler.timesteps
    accepted = set(inspect.signature(scheduler.step).parameters)
    extra = {key: value for key, value in (("eta", eta), ("generator", generator)) if key in accepted}
    order = getattr(scheduler, "order", 1)
    total = len(timesteps) // order if order > 1 else len(timesteps)
    preview = latents
    try:
        for i, t in enumerate(timesteps):
            guided.step = i  # diffusers counts the adapter's conditioning factor in timesteps
            # scaling is elementwise, so scaling once and letting GuidedUNet double the batch is what
            # diffusers computes when it doubles first
            prediction = guided.predict(scheduler.scale_model_input(latents, t), t)
            output = scheduler.step(prediction, t, latents, **extra, return_dict=True)
            latents = output.prev_sample
            if blend is not None:
                init, keep, noise = blend
                if i < len(timesteps) - 1:
                    init = scheduler.add_noise(init, noise, timesteps[i + 1:i + 2])
                latents = init * keep + latents * (1 - keep)
            preview = getattr(output, "pred_original_sample", None)
            preview = getattr(output, "denoised", None) if preview is None else preview  # LCM
            preview = latents if preview is None else preview
            if i == len(timesteps) - 1 or (i + 1) % order == 0:
                on_step(min(i // order + 1, total), total, preview)
    except SkipImage:
        return preview
    return latents

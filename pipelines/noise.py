"""The starting noise of each image, and the seeds each image of a request gets.

Without a variation, image k is seeded `seed + k`, and its noise is exactly what diffusers' pipelines draw
themselves (`randn_tensor` with a CPU `torch.Generator` seeded that way), so passing it as `latents=` changes
no pixel. With a variation strength s > 0 the noise is AUTOMATIC1111's
`slerp(s, noise(seed), noise(variation_seed))`, and, as there, every image keeps `seed` while the variation
seed counts up: a batch is variations of one picture.
"""
from __future__ import annotations

import random

import torch


def image_seeds(request) -> list[tuple[int, int]]:
    """(seed, variation seed) of every image, in order; seeds of -1 must already be resolved."""
    total = request.batch_count * request.num_images
    varying = request.variation_strength > 0
    return [(request.seed if varying else request.seed + k, request.variation_seed + k if varying else -1)
            for k in range(total)]


def resolve_seeds(request, max_seed: int):
    """The request with a random seed (and a random variation seed, when varying) in place of -1."""
    total = request.batch_count * request.num_images
    varying = request.variation_strength > 0
    pick = random.SystemRandom().randint
    changes = {}
    if request.seed == -1:
        changes["seed"] = pick(0, max_seed - (1 if varying else total) + 1)
    if varying and request.variation_seed == -1:
        changes["variation_seed"] = pick(0, max_seed - total + 1)
    return request.with_(**changes) if changes else request


def slerp(strength: float, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """AUTOMATIC1111's spherical interpolation of two noise tensors shaped (channels, height, width).

    Like theirs, it normalises along dim 1 (each column of a channel) and, when the two are nearly parallel,
    falls back to `low * strength + high * (1 - strength)` (their order, kept so the same seeds give the
    same noise).
    """
    low_norm = low / torch.norm(low, dim=1, keepdim=True)
    high_norm = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_norm * high_norm).sum(1)
    if dot.mean() > 0.9995:
        return low * strength + high * (1 - strength)
    omega = torch.acos(dot)
    so = torch.sin(omega)
    return (torch.sin((1.0 - strength) * omega) / so).unsqueeze(1) * low + \
        (torch.sin(strength * omega) / so).unsqueeze(1) * high


def initial_latents(shape: tuple[int, ...], generator: torch.Generator, *, dtype: torch.dtype,
                    device: torch.device | str, variation_seed: int = -1,
                    variation_strength: float = 0.0) -> torch.Tensor:
    """The unscaled starting noise of one image (`shape` = (1, channels, height, width)), drawn from
    `generator` as diffusers draws it; the pipeline multiplies it by the scheduler's init_noise_sigma.

    `generator` advances exactly as when the pipeline draws the noise itself, so ancestral samplers, which
    keep drawing from it, get the same noise afterwards too.
    """
    from diffusers.utils.torch_utils import randn_tensor

    if variation_strength <= 0:
        return randn_tensor(shape, generator=generator, device=torch.device(device), dtype=dtype)
    if variation_seed < 0:
        raise ValueError("a variation needs a variation seed >= 0")
    noise = randn_tensor(shape, generator=generator, device=torch.device("cpu"), dtype=torch.float32)
    other = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(int(variation_seed)),
                        dtype=torch.float32)
    mixed = torch.stack([slerp(variation_strength, a, b) for a, b in zip(noise, other)])
    return mixed.to(device=device, dtype=dtype)

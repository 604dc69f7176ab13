"""Several images of one request through the UNet together, each keeping its own seed's noise.

A batch of B images is one UNet call of 2B rows per step (B unconditional, then B conditional, the order
`GuidedUNet` splits on) instead of B calls of two rows: fewer, larger kernels, which pays on a GPU. Each
image still draws its starting noise, its ancestral noise and its Brownian path from its own seeded
generator, so it is the same picture as alone up to the arithmetic of a larger batch (measured in
tests/test_unet_batch.py and stated in the README).
"""
from __future__ import annotations

from dataclasses import replace

import torch

from pipelines.sampling.guided_unet import GuidedUNet


class StackedNoise:
    """The noise sources of a batch's images (pipelines/sampling/brownian.py), one row each."""

    def __init__(self, sources):
        self.sources = list(sources)

    def ancestral(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([source.ancestral(x[k:k + 1]) for k, source in enumerate(self.sources)])

    def brownian(self, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
        return torch.cat([source.brownian(sigma, sigma_next) for source in self.sources])


def _rows(tensor: torch.Tensor | None, count: int) -> torch.Tensor | None:
    """[u, c] -> [u, u, ..., c, c, ...]: each branch's row once per image, branches kept in order."""
    return None if tensor is None else tensor.repeat_interleave(count, dim=0)


def for_images(template: GuidedUNet, count: int) -> GuidedUNet:
    """`template` (conditioning for one image) widened to `count` images."""
    if count == 1:
        return template
    added = None if template.added_cond is None else {
        name: _rows(value, count) for name, value in template.added_cond.items()}
    state = None if template.adapter_state is None else [_rows(v, count) for v in template.adapter_state]
    return replace(template, embeds=_rows(template.embeds, count), added_cond=added, adapter_state=state,
                   timestep_cond=_rows(template.timestep_cond, count),
                   extra_channels=_rows(template.extra_channels, count))

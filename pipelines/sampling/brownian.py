"""Where the stochastic samplers' noise comes from, reproducibly per image seed.

- Ancestral samplers (Euler a, DPM2 a, DPM++ 2S a) draw fresh normal noise at every step from the image's
  own CPU generator, continuing after the starting noise (as A1111 does with its per-image RNG).
- SDE samplers (DPM++ SDE, 2M SDE, 3M SDE) read increments of one Brownian path per image, fixed by the
  seed, so a step's noise depends on the noise levels it spans and not on how many steps came before
  (torchsde's BrownianTree, queried as k-diffusion queries it).
"""
from __future__ import annotations

import warnings

import torch


class SeededNoise:
    def __init__(self, generator: torch.Generator, seed: int, sigma_min: torch.Tensor, sigma_max: torch.Tensor,
                 like: torch.Tensor):
        self.generator = generator
        self.seed = int(seed)
        self._span = (torch.as_tensor(sigma_min).cpu(), torch.as_tensor(sigma_max).cpu())
        self._like = like
        self._tree = None

    def ancestral(self, x: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(x.shape, generator=self.generator, dtype=torch.float32, device="cpu")
        return noise.to(x.device, x.dtype)

    def brownian(self, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor:
        """W(sigma_next) - W(sigma), divided by sqrt(|sigma_next - sigma|): standard normal per element."""
        a, b = torch.as_tensor(sigma).cpu(), torch.as_tensor(sigma_next).cpu()
        low, high, sign = (a, b, 1) if a < b else (b, a, -1)
        with warnings.catch_warnings():
            # torchsde compares a query at the interval's end (float32) with its own float64 copy of that end
            # and warns about the rounding; the query is inside the interval
            warnings.filterwarnings("ignore", message="Should have t[ab]", category=UserWarning)
            increment = self._brownian_tree()(low, high) * sign
        return (increment / (b - a).abs().sqrt()).to(self._like.device, self._like.dtype)

    def _brownian_tree(self):
        if self._tree is None:
            import torchsde

            low, high = self._span
            start = torch.zeros_like(self._like, dtype=torch.float32, device="cpu")
            self._tree = torchsde.BrownianTree(low, start, high, entropy=self.seed)
        return self._tree

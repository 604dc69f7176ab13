"""One call of the shared UNet with everything a request conditions it on, classifier-free guidance included.

`GuidedUNet.outputs` returns the UNet's raw prediction (noise, or v) for the unconditional and conditional
branch; `predict` combines them as diffusers does (for the diffusers-form samplers), `KDenoiser` turns them
into the clean-latent estimate a k-diffusion sampler wants, guiding as AUTOMATIC1111 does.
Per-request state (the step counter the adapter's conditioning factor reads) lives here, never in the UNet.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from pipelines.sampling.noise_table import NoiseTable


@dataclass
class GuidedUNet:
    unet: Any  # the shared UNet2DConditionModel (or a per-request wrapper with the same call)
    embeds: torch.Tensor  # (2, L, D) = [unconditional, conditional] when guided, else (1, L, D)
    guidance_scale: float
    guided: bool
    added_cond: dict[str, torch.Tensor] | None = None  # SDXL: pooled text embeds and size/crop ids, batched
    adapter_state: list[torch.Tensor] | None = None  # T2I-Adapter features, scaled and batched
    adapter_steps: int | None = None  # the adapter acts while `step` < this (SDXL's conditioning factor)
    timestep_cond: torch.Tensor | None = None  # LCM's guidance embedding
    extra_channels: torch.Tensor | None = None  # inpainting UNets: masked-image latents and mask, batched
    step: int = field(default=0)  # the sampler step being taken (0-based)

    @property
    def dtype(self) -> torch.dtype:
        return self.embeds.dtype

    def outputs(self, latents: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        """The UNet's prediction for `latents` (already scaled to the model's input), one row per branch."""
        batch = torch.cat([latents] * 2) if self.guided else latents
        if self.extra_channels is not None:
            batch = torch.cat([batch, self.extra_channels.to(batch.dtype)], dim=1)
        kwargs: dict[str, Any] = {"encoder_hidden_states": self.embeds, "return_dict": False}
        if self.added_cond is not None:
            kwargs["added_cond_kwargs"] = self.added_cond
        if self.timestep_cond is not None:
            kwargs["timestep_cond"] = self.timestep_cond
        if self.adapter_state is not None and (self.adapter_steps is None or self.step < self.adapter_steps):
            kwargs["down_intrablock_additional_residuals"] = [state.clone() for state in self.adapter_state]
        if timestep.ndim == 0 and timestep.is_floating_point():
            timestep = timestep.expand(batch.shape[0])
        return self.unet(batch.to(self.dtype), timestep, **kwargs)[0]

    def predict(self, latents: torch.Tensor, timestep) -> torch.Tensor:
        """Guided prediction in the UNet's own terms (diffusers: uncond + scale * (cond - uncond))."""
        out = self.outputs(latents, timestep)
        if not self.guided:
            return out
        uncond, cond = out.chunk(2)
        return uncond + self.guidance_scale * (cond - uncond)


@dataclass
class KDenoiser:
    """denoise(x, sigma) -> the guided estimate of the clean latent, as k-diffusion's samplers call it.

    x stays in float32 between steps; the UNet sees x / sqrt(sigma^2 + 1) at the fractional timestep of
    sigma (A1111's CompVis denoiser); each branch becomes a clean-latent estimate, then they are guided.
    """

    guided_unet: GuidedUNet
    table: NoiseTable
    calls: int = 0
    blend: tuple[torch.Tensor, torch.Tensor] | None = None  # inpainting: (init latent, keep mask)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        sigma = torch.as_tensor(sigma, dtype=torch.float32)
        c_skip, c_out, c_in = self.table.model_scalings(sigma)
        timestep = self.table.sigma_to_t(sigma).to(x.device)
        out = self.guided_unet.outputs(x * c_in.to(x.device), timestep).float()
        rows = torch.cat([x] * 2) if self.guided_unet.guided else x  # [uncond; cond], each one row per image
        branches = rows.float() * c_skip.to(x.device) + out * c_out.to(x.device)
        if self.guided_unet.guided:
            uncond, cond = branches.chunk(2)
            branches = uncond + (cond - uncond) * self.guided_unet.guidance_scale
        if self.blend is not None:  # A1111's CFGDenoiser: the kept area's estimate is the original latent
            init, keep = self.blend
            branches = init * keep + branches * (1 - keep)
        return branches

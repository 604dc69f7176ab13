"""One request, run on a loaded model: the studio's own sampling around shared weights.

Per request: the prompts are encoded once and everything the UNet is conditioned on is prepared once
(`Conditioning`). Per image: a CPU torch.Generator seeded `seed + k` makes the starting noise (and the
ancestral noise after it), so image k is the same picture alone or in a batch; the sampler is A1111's
(pipelines/sampling) or a fresh diffusers scheduler for the diffusers-form ones.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import torch
from PIL import Image

from pipelines import previews, prompts
from pipelines.components import LoadedModel, pipeline_class
from pipelines.noise import initial_latents
from pipelines.prompts import PromptEmbeddings
from pipelines.requests import GenerationCancelled, GenerationRequest, StepUpdate
from pipelines.sampling.guided_unet import GuidedUNet
from pipelines.sampling.loops import SkipImage, run_diffusers_scheduler, run_k_sampler
from pipelines.sampling.noise_table import NoiseTable
from pipelines.sampling.schedules import sigma_schedule
from pipelines.schedulers import ResolvedSampler, build_scheduler, resolve_sampler


@dataclass
class RunHooks:
    on_step: Callable[[StepUpdate], None] | None = None
    should_stop: Callable[[], bool] | None = None
    preview_every: int = 0
    preview_matrix: Callable[[], torch.Tensor] | None = None  # lazily fitted per model
    # Skip (A1111's): true ends the current image now; it is asked again for the next, so true once per skip
    should_skip: Callable[[], bool] | None = None
    on_image: Callable[[int, Image.Image, int | None], None] | None = None  # (index, image, skipped at step)


def build_pipeline(loaded: LoadedModel, scheduler=None, adapter=None):
    """A throwaway diffusers pipeline object around the shared components (constructor cost ~1 ms)."""
    cls = pipeline_class(loaded.family, with_adapter=adapter is not None)
    expected, optional = cls._get_signature_keys(cls)
    components = {name: loaded.components.get(name) for name in expected}
    components["scheduler"] = scheduler if scheduler is not None else loaded.components["scheduler"]
    if adapter is not None:
        components["adapter"] = adapter
    extra = {"requires_safety_checker": False} if "requires_safety_checker" in optional else {}
    pipe = cls(**components, **extra)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def uses_guidance(loaded: LoadedModel, guidance_scale: float) -> bool:
    return guidance_scale > 1.0 and getattr(loaded.components["unet"].config, "time_cond_proj_dim", None) is None


def encode_prompts(loaded: LoadedModel, request: GenerationRequest, embedding_library=None) -> PromptEmbeddings:
    """A1111-style prompts (weights, BREAK, any length, textual inversion, clip skip): see pipelines/prompts."""
    return prompts.encode_prompts(loaded, request.prompt, request.negative_prompt,
                                  guidance=uses_guidance(loaded, request.guidance_scale),
                                  clip_skip=request.clip_skip, embeddings=embedding_library)


def _pair(kwargs: dict, name: str, guided: bool) -> torch.Tensor:
    """[negative, positive] batched for guidance (diffusers' order), else the positive alone."""
    return torch.cat([kwargs[f"negative_{name}"], kwargs[name]]) if guided else kwargs[name]


def size_and_crop_ids(loaded: LoadedModel, request: GenerationRequest, dtype: torch.dtype) -> torch.Tensor:
    """SDXL's micro-conditioning as diffusers' pipeline sets it: original size = target size = (h, w),
    crop (0, 0)."""
    ids = [request.height, request.width, 0, 0, request.height, request.width]
    return torch.tensor([ids], dtype=dtype, device=loaded.device)


def conditioning(loaded: LoadedModel, request: GenerationRequest, embeddings: PromptEmbeddings, *,
                 adapter=None, conditions: list[Image.Image] | None = None) -> GuidedUNet:
    """Everything the UNet is conditioned on for this request, prepared once (a template: copy per image)."""
    unet = loaded.components["unet"]
    guided = uses_guidance(loaded, request.guidance_scale)
    kwargs = embeddings.kwargs
    embeds = _pair(kwargs, "prompt_embeds", guided)
    added = None
    if getattr(unet.config, "addition_embed_type", None) == "text_time":  # SDXL-style UNets
        ids = size_and_crop_ids(loaded, request, embeds.dtype)
        added = {"text_embeds": _pair(kwargs, "pooled_prompt_embeds", guided),
                 "time_ids": torch.cat([ids, ids]) if guided else ids}
    timestep_cond = None
    if getattr(unet.config, "time_cond_proj_dim", None) is not None:  # LCM-distilled UNets embed the guidance
        scale = torch.tensor([request.guidance_scale - 1.0])
        timestep_cond = build_pipeline(loaded).get_guidance_scale_embedding(
            scale, embedding_dim=unet.config.time_cond_proj_dim).to(loaded.device, embeds.dtype)
    state, adapter_steps = None, None
    if adapter is not None:
        state = _adapter_state(loaded, request, adapter, conditions, guided)
        if loaded.family == "sdxl":
            adapter_steps = int(request.steps * request.adapter_conditioning_factor)
    return GuidedUNet(unet, embeds, request.guidance_scale, guided, added, state, adapter_steps, timestep_cond)


@torch.inference_mode()
def _adapter_state(loaded, request, adapter, conditions, guided) -> list[torch.Tensor]:
    """The adapters' features for the condition maps, weighted, batched for guidance (as diffusers does)."""
    from diffusers import MultiAdapter
    from diffusers.pipelines.t2i_adapter.pipeline_stable_diffusion_adapter import _preprocess_adapter_image

    weights = [a.weight for a in request.adapters]
    dtype = adapter.dtype
    if isinstance(adapter, MultiAdapter):
        inputs = [_preprocess_adapter_image(c, request.height, request.width).to(loaded.device, dtype)
                  for c in conditions]
        state = list(adapter(inputs, weights))
    else:
        image = _preprocess_adapter_image(conditions[0], request.height, request.width).to(loaded.device, dtype)
        state = [v * weights[0] for v in adapter(image)]
    return [torch.cat([v] * 2) if guided else v for v in state]


def noise_table(loaded: LoadedModel) -> NoiseTable:
    with loaded.cache_lock:
        if "noise_table" not in loaded.cache:
            loaded.cache["noise_table"] = NoiseTable.from_scheduler_config(loaded.base_scheduler_config)
        return loaded.cache["noise_table"]


def latent_shape(loaded: LoadedModel, request: GenerationRequest) -> tuple[int, int, int, int]:
    vae_scale = 2 ** (len(loaded.components["vae"].config.block_out_channels) - 1)
    channels = loaded.components["unet"].config.in_channels
    return 1, channels, request.height // vae_scale, request.width // vae_scale


class _Progress:
    """Turns each image's step callbacks into StepUpdates over the whole request; Stop and Skip."""

    def __init__(self, request: GenerationRequest, hooks: RunHooks, image_index: int, images: int):
        self.request, self.hooks, self.index, self.images = request, hooks, image_index, images
        self.skipped_at: int | None = None  # the step at which Skip ended this image

    def check_stop(self):
        if self.hooks.should_stop is not None and self.hooks.should_stop():
            raise GenerationCancelled("generation was stopped")

    def __call__(self, step: int, total: int, latents: torch.Tensor) -> None:
        self.check_stop()
        if self.hooks.on_step is not None:
            preview = None
            every = self.hooks.preview_every
            if every and self.hooks.preview_matrix is not None and (step % every == 0 or step == total):
                preview = previews.linear_preview(self.hooks.preview_matrix(), latents,
                                                  (self.request.width, self.request.height))
            # in the request's steps (a "DDIM" schedule may take a step more or less than asked)
            steps = self.request.steps
            overall = self.index * steps + min(steps, round(step * steps / total))
            self.hooks.on_step(StepUpdate(step=overall, total=self.images * steps, preview=preview))
        if step < total and self.hooks.should_skip is not None and self.hooks.should_skip():
            self.skipped_at = step
            raise SkipImage()


def denoise_one(loaded: LoadedModel, request: GenerationRequest, sampler: ResolvedSampler, template: GuidedUNet,
                seed: int, on_step, variation_seed: int = -1) -> torch.Tensor:
    """The clean latent of one image, from the noise of `seed` (mixed with `variation_seed`'s, A1111's way)."""
    guided = replace(template, step=0)
    generator = torch.Generator("cpu").manual_seed(seed)
    shape = latent_shape(loaded, request)
    variation = {"variation_seed": variation_seed, "variation_strength": request.variation_strength}
    with torch.inference_mode():
        if sampler.spec.is_k_sampler:  # A1111 samples in float32 whatever the UNet's dtype
            table = noise_table(loaded)
            sigmas = sigma_schedule(sampler.schedule, request.steps, table, loaded.family,
                                    drop_penultimate=sampler.spec.drop_penultimate)
            noise = initial_latents(shape, generator, dtype=torch.float32, device=loaded.device, **variation)
            return run_k_sampler(sampler.spec.function, guided, table, sigmas, noise, generator, seed, on_step)
        scheduler = build_scheduler(sampler.name, loaded.base_scheduler_config)
        latents = initial_latents(shape, generator, dtype=template.dtype, device=loaded.device, **variation)
        latents = latents * scheduler.init_noise_sigma
        return run_diffusers_scheduler(scheduler, guided, request.steps, latents, generator, on_step)


def run_images(loaded: LoadedModel, request: GenerationRequest, seeds: list[int], hooks: RunHooks, *,
               adapter=None, conditions: list[Image.Image] | None = None, embedding_library=None,
               variation_seeds: list[int] | None = None) -> list[Image.Image]:
    """Denoise and decode one image per seed (and variation seed, see pipelines/noise.py). The caller holds
    the model's weights lock. `embedding_library`: the textual-inversion embeddings the prompts may name."""
    sampler = resolve_sampler(request.scheduler, request.schedule_type)
    _Progress(request, hooks, 0, len(seeds)).check_stop()
    template = conditioning(loaded, request, encode_prompts(loaded, request, embedding_library),
                            adapter=adapter, conditions=conditions)
    images = []
    for k, seed in enumerate(seeds):
        progress = _Progress(request, hooks, k, len(seeds))
        progress.check_stop()
        latents = denoise_one(loaded, request, sampler, template, seed, progress,
                              variation_seeds[k] if variation_seeds else -1)
        image = previews.decode(loaded.components["vae"], latents)[0]
        images.append(image)
        if hooks.on_image is not None:
            hooks.on_image(k, image, progress.skipped_at)
    return images

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
from pipelines.families import get_family
from pipelines.noise import initial_latents
from pipelines.modes.start import Start
from pipelines.prompts import PromptEmbeddings
from pipelines.requests import GenerationCancelled, GenerationRequest, StepUpdate
from pipelines.sampling.guided_unet import GuidedUNet
from pipelines.sampling.batched import StackedNoise, for_images
from pipelines.sampling.loops import SkipImage, run_diffusers_scheduler, run_k_sampler, seeded_noise
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
                 adapter=None, conditions: list[Image.Image] | None = None,
                 extra_channels: torch.Tensor | None = None) -> GuidedUNet:
    """Everything the UNet is conditioned on for this request, prepared once (a template: copy per image).
    `extra_channels`: an inpainting UNet's mask and masked-picture latents (pipelines/modes/run.py), unbatched;
    without them such a UNet gets those of a picture masked all over (text to image, as A1111 does)."""
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
        if get_family(loaded.family).adapter_factor:
            adapter_steps = int(request.steps * request.adapter_conditioning_factor)
    if extra_channels is None and unet.config.in_channels != unet.config.out_channels:
        from pipelines.modes.run import unet_extra_channels

        extra_channels = unet_extra_channels(loaded, latent_shape(loaded, request)[-2:])
    if extra_channels is not None and guided:
        extra_channels = torch.cat([extra_channels] * 2)
    return GuidedUNet(unet, embeds, request.guidance_scale, guided, added, state, adapter_steps, timestep_cond,
                      extra_channels)


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
    channels = loaded.components["unet"].config.out_channels  # an inpainting UNet takes 5 more in
    return 1, channels, request.height // vae_scale, request.width // vae_scale


class _Progress:
    """Turns each image's step callbacks into StepUpdates over the whole request; Stop and Skip.

    Counted in the request's steps: `images` images of `per_image` steps (default `steps`; image to image and
    the hires fix plan their own), of which this run is `run` steps from `offset` (the hires fix's second pass).
    """

    def __init__(self, request: GenerationRequest, hooks: RunHooks, image_index: int, images: int, *,
                 per_image: int | None = None, offset: int = 0, run: int | None = None,
                 size: tuple[int, int] | None = None, together: int = 1):
        self.request, self.hooks, self.index, self.images = request, hooks, image_index, images
        self.together = together  # images denoised at once from image_index on (a UNet batch)
        self.skipped_at: int | None = None  # the step at which Skip ended this image
        self.per_image = per_image or request.steps
        self.offset, self.run = offset, run or self.per_image
        self.size = size or (request.width, request.height)

    def check_stop(self):
        if self.hooks.should_stop is not None and self.hooks.should_stop():
            raise GenerationCancelled("generation was stopped")

    def __call__(self, step: int, total: int, latents: torch.Tensor) -> None:
        self.check_stop()
        if self.hooks.on_step is not None:
            preview = None
            every = self.hooks.preview_every
            if every and self.hooks.preview_matrix is not None and (step % every == 0 or step == total):
                preview = previews.linear_preview(self.hooks.preview_matrix(), latents, self.size)
            # in planned steps (a "DDIM" schedule may take a step more or less than asked)
            done = min(self.run, round(step * self.run / total)) if total else self.run
            overall = self.index * self.per_image + (self.offset + done) * self.together
            self.hooks.on_step(StepUpdate(step=overall, total=self.images * self.per_image, preview=preview))
        if step < total and self.hooks.should_skip is not None and self.hooks.should_skip():
            self.skipped_at = self.offset + step
            raise SkipImage()

    def deliver(self, image: Image.Image, nth: int = 0) -> Image.Image:
        """Hand a finished image (the `nth` of those denoised together) over: saved and shown at once, see
        RunHooks.on_image. Skip ends a UNet batch's images together."""
        if self.hooks.on_image is not None:
            self.hooks.on_image(self.index + nth, image, self.skipped_at)
        return image


def run_unet(loaded: LoadedModel, request: GenerationRequest, unet):
    """The UNet one image's run calls: with `step_cache`, a per-run StepCachedUNet around the shared one (its
    cache is this run's state); when the model was loaded with torch.compile (and no LoRA is changing the
    UNet's modules), the model's compiled UNet; else the shared UNet itself."""
    if request.step_cache:
        from pipelines.fast.step_cache import StepCachedUNet

        # the top 30% of the noise schedule always in full (see the measurements in step_cache.py)
        full_above = 0.7 * loaded.base_scheduler_config.get("num_train_timesteps", 1000)
        return StepCachedUNet(unet, request.step_cache, full_above=full_above)
    fast = getattr(loaded, "fast", None)
    if fast is not None and fast.compile and not request.loras:
        from pipelines.fast.compiled import compiled_unet

        return compiled_unet(loaded)
    return unet


def denoise_one(loaded: LoadedModel, request: GenerationRequest, sampler: ResolvedSampler, template: GuidedUNet,
                seed: int, on_step, start: Start | None = None, variation_seed: int = -1) -> torch.Tensor:
    """The clean latent of one image, from the noise of `seed` (mixed with `variation_seed`'s, A1111's way;
    pipelines/noise.py) and, with `start`, from an init latent: image to image, inpainting, the hires fix's
    second pass (pipelines/modes/start.py)."""
    guided = replace(template, step=0, unet=run_unet(loaded, request, template.unet))
    generator = torch.Generator("cpu").manual_seed(seed)
    shape = latent_shape(loaded, request)
    vae = loaded.components["vae"]
    variation = {"variation_seed": variation_seed, "variation_strength": request.variation_strength}
    with torch.inference_mode():
        if sampler.spec.is_k_sampler:
            table = noise_table(loaded)
            total, run = (request.steps, request.steps) if start is None else start.steps(request.steps, True)
            sigmas = sigma_schedule(sampler.schedule, total, table, loaded.family,
                                    drop_penultimate=sampler.spec.drop_penultimate)
            # A1111 samples in float32 whatever the UNet's dtype
            noise = initial_latents(shape, generator, dtype=torch.float32, device=loaded.device, **variation)
            if start is None:
                return run_k_sampler(sampler.spec.function, guided, table, sigmas, noise, generator, seed, on_step)
            init = start.latents(vae, generator, shape, loaded.device, torch.float32)
            blend = None if start.keep is None else (init, start.keep.to(init.device, init.dtype))
            latents = run_k_sampler(sampler.spec.function, guided, table, sigmas[total - run:], noise, generator,
                                    seed, on_step, start=init, blend=blend, span=sigmas)
            return start.blended(latents, init)
        scheduler = build_scheduler(sampler.name, loaded.base_scheduler_config)
        latents = initial_latents(shape, generator, dtype=template.dtype, device=loaded.device, **variation)
        if start is None:
            latents = latents * scheduler.init_noise_sigma
            return run_diffusers_scheduler(scheduler, guided, request.steps, latents, generator, on_step)
        noise = latents
        init = start.latents(vae, generator, shape, loaded.device, template.dtype)
        total, run = start.steps(request.steps, False)
        if run == 0:
            return init
        scheduler.set_timesteps(total, device=loaded.device)
        first = (total - run) * scheduler.order
        timesteps = scheduler.timesteps[first:]
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(first)
        latents = scheduler.add_noise(init, noise, timesteps[:1])
        four_channel = template.extra_channels is None
        blend = (init, start.keep.to(init.device, init.dtype), noise) if start.keep is not None and four_channel \
            else None
        latents = run_diffusers_scheduler(scheduler, guided, total, latents, generator, on_step,
                                          timesteps=timesteps, blend=blend)
        return start.blended(latents, init)


def denoise_together(loaded: LoadedModel, request: GenerationRequest, sampler: ResolvedSampler,
                     template: GuidedUNet, seeds: list[int], variation_seeds: list[int], on_step) -> torch.Tensor:
    """The clean latents of several text-to-image images in one UNet batch (a k-sampler's): each image's
    noise from its own seed, as `denoise_one` draws it (pipelines/sampling/batched.py)."""
    guided = for_images(replace(template, step=0, unet=run_unet(loaded, request, template.unet)), len(seeds))
    shape = latent_shape(loaded, request)
    table = noise_table(loaded)
    sigmas = sigma_schedule(sampler.schedule, request.steps, table, loaded.family,
                            drop_penultimate=sampler.spec.drop_penultimate)
    with torch.inference_mode():
        generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
        noises = [initial_latents(shape, generator, dtype=torch.float32, device=loaded.device,
                                  variation_seed=variation_seed, variation_strength=request.variation_strength)
                  for generator, variation_seed in zip(generators, variation_seeds)]
        source = StackedNoise(seeded_noise(generator, seed, sigmas, like=noise * sigmas[0])
                              for generator, seed, noise in zip(generators, seeds, noises))
        return run_k_sampler(sampler.spec.function, guided, table, sigmas, torch.cat(noises), None, -1, on_step,
                             source=source)


def images_together(loaded: LoadedModel, request: GenerationRequest, sampler: ResolvedSampler) -> int:
    """How many of a request's images share a UNet batch: AUTOMATIC1111's batch size (`num_images`), capped
    by what the device's fast paths batch (pipelines/fast/paths.py: one on a CPU), and only for k-samplers
    (a diffusers scheduler keeps one generator per call)."""
    limit = getattr(getattr(loaded, "fast", None), "unet_batch", 1)
    return max(1, min(limit, request.num_images)) if sampler.spec.is_k_sampler else 1


def run_images(loaded: LoadedModel, request: GenerationRequest, seeds: list[int], hooks: RunHooks, *,
               adapter=None, conditions: list[Image.Image] | None = None, embedding_library=None,
               variation_seeds: list[int] | None = None) -> list[Image.Image]:
    """Denoise and decode one image per seed (and variation seed, see pipelines/noise.py); each is handed to
    `hooks.on_image` as soon as it is made. The caller holds the model's weights lock.
    `embedding_library`: the textual-inversion embeddings the prompts may name (pipelines.prompts).
    Image to image, inpainting and the hires fix run in pipelines/modes/run.py, on the same pieces."""
    sampler = resolve_sampler(request.scheduler, request.schedule_type)
    variation_seeds = list(variation_seeds or [-1] * len(seeds))
    _Progress(request, hooks, 0, len(seeds)).check_stop()
    embeddings = encode_prompts(loaded, request, embedding_library)
    if request.init_image is not None or request.hires:
        from pipelines.modes.run import run_with_picture

        return run_with_picture(loaded, request, seeds, variation_seeds, hooks, sampler, embeddings,
                                adapter=adapter, conditions=conditions)
    template = conditioning(loaded, request, embeddings, adapter=adapter, conditions=conditions)
    images, together = [], images_together(loaded, request, sampler)
    for k in range(0, len(seeds), together):
        chunk, variations = seeds[k:k + together], variation_seeds[k:k + together]
        progress = _Progress(request, hooks, k, len(seeds), together=len(chunk))
        progress.check_stop()
        if len(chunk) == 1:
            latents = denoise_one(loaded, request, sampler, template, chunk[0], progress,
                                  variation_seed=variations[0])
        else:
            latents = denoise_together(loaded, request, sampler, template, chunk, variations, progress)
        for nth in range(len(chunk)):  # decoded one by one: a VAE's peak memory grows with its batch
            image = previews.decode(loaded.components["vae"], latents[nth:nth + 1])[0]
            images.append(progress.deliver(image, nth))
    return images

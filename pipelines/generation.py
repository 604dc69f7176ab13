"""One request, run on a loaded model: fresh scheduler and generator per image, shared weights.

Image k of a request is made on its own with a CPU torch.Generator seeded `seed + k`, so it is the
same picture whether it was made alone or as part of a batch (batched UNet calls differ in the last
bits of floating point, which can flip a pixel).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from PIL import Image

from pipelines import previews, prompts
from pipelines.components import LoadedModel, pipeline_class
from pipelines.prompts import PromptEmbeddings
from pipelines.requests import GenerationCancelled, GenerationRequest, StepUpdate
from pipelines.schedulers import build_scheduler


@dataclass
class RunHooks:
    on_step: Callable[[StepUpdate], None] | None = None
    should_stop: Callable[[], bool] | None = None
    preview_every: int = 0
    preview_matrix: Callable[[], torch.Tensor] | None = None  # lazily fitted per model


def build_pipeline(loaded: LoadedModel, scheduler, adapter=None):
    """A throwaway pipeline object around the shared components (constructor cost ~1 ms)."""
    cls = pipeline_class(loaded.family, with_adapter=adapter is not None)
    expected, optional = cls._get_signature_keys(cls)
    components = {name: loaded.components.get(name) for name in expected}
    components["scheduler"] = scheduler
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


class _Progress:
    """Turns the pipeline's per-timestep callbacks into StepUpdates over the whole request."""

    def __init__(self, request: GenerationRequest, hooks: RunHooks, image_index: int):
        self.request, self.hooks = request, hooks
        self.offset = image_index * request.steps
        self.total = request.num_images * request.steps

    def check_stop(self):
        if self.hooks.should_stop is not None and self.hooks.should_stop():
            raise GenerationCancelled("generation was stopped")

    def step_done(self, step: int, latents: torch.Tensor):
        """`step` is 1-based within this image."""
        if self.hooks.on_step is None:
            return
        overall = self.offset + min(step, self.request.steps)
        preview = None
        every = self.hooks.preview_every
        if every and self.hooks.preview_matrix is not None and (step % every == 0 or step == self.request.steps):
            preview = previews.linear_preview(self.hooks.preview_matrix(), latents,
                                              (self.request.width, self.request.height))
        self.hooks.on_step(StepUpdate(step=overall, total=self.total, preview=preview))

    # callback_on_step_end(pipe, i, t, kwargs): called for every timestep (2nd-order samplers have ~2 per step)
    def on_step_end(self, pipe, i, t, callback_kwargs):
        self.check_stop()
        order = getattr(pipe.scheduler, "order", 1)
        if i == pipe.num_timesteps - 1 or (i + 1) % order == 0:
            self.step_done(i // order + 1, callback_kwargs["latents"])
        return {}

    # legacy callback(step, t, latents) of the adapter pipelines, called once per step
    def legacy(self, step, t, latents):
        self.check_stop()
        self.step_done(step + 1, latents)


def run_images(loaded: LoadedModel, request: GenerationRequest, seeds: list[int], hooks: RunHooks, *,
               adapter=None, conditions: list[Image.Image] | None = None,
               embedding_library=None) -> list[Image.Image]:
    """Denoise and decode one image per seed. The caller holds the model's weights lock.
    `embedding_library`: the textual-inversion embeddings the prompts may name (pipelines.prompts)."""
    images = []
    embeddings = None
    for k, seed in enumerate(seeds):
        progress = _Progress(request, hooks, k)
        progress.check_stop()
        scheduler = build_scheduler(request.scheduler, loaded.base_scheduler_config, noise_seeds=[seed])
        pipe = build_pipeline(loaded, scheduler, adapter)
        if embeddings is None:
            embeddings = encode_prompts(loaded, request, embedding_library)
        kwargs = dict(embeddings.kwargs, num_inference_steps=request.steps, guidance_scale=request.guidance_scale,
                      width=request.width, height=request.height, output_type="latent",
                      generator=torch.Generator("cpu").manual_seed(seed))
        if adapter is not None:
            weights = [a.weight for a in request.adapters]
            kwargs.update(image=conditions if len(conditions) > 1 else conditions[0],
                          adapter_conditioning_scale=weights if len(weights) > 1 else weights[0],
                          callback=progress.legacy, callback_steps=1)
            if loaded.family == "sdxl":
                kwargs["adapter_conditioning_factor"] = request.adapter_conditioning_factor
        else:
            kwargs["callback_on_step_end"] = progress.on_step_end
        with torch.inference_mode():
            latents = pipe(**kwargs).images
        images.extend(previews.decode(loaded.components["vae"], latents))
    return images

"""One request, run on a loaded model: fresh scheduler and generator per image, shared weights.

Image k of a request is made on its own with a CPU torch.Generator seeded `seed + k`, so it is the
same picture whether it was made alone or as part of a batch (batched UNet calls differ in the last
bits of floating point, which can flip a pixel).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from PIL import Image

from pipelines import previews
from pipelines.components import LoadedModel, pipeline_class
from pipelines.requests import GenerationCancelled, GenerationRequest, InvalidRequest, StepUpdate
from pipelines.schedulers import build_scheduler


@dataclass
class RunHooks:
    on_step: Callable[[StepUpdate], None] | None = None
    should_stop: Callable[[], bool] | None = None
    preview_every: int = 0
    preview_matrix: Callable[[], torch.Tensor] | None = None  # lazily fitted per model


@dataclass(frozen=True)
class PromptEmbeddings:
    kwargs: dict[str, Any]  # prompt_embeds, negative_prompt_embeds (+ the pooled ones for SDXL)


def build_pipeline(loaded: LoadedModel, scheduler, adapter=None, step_cache: int = 0, compiled: bool = False):
    """A throwaway pipeline object around the shared components (constructor cost ~1 ms). With
    `step_cache`, its `unet` is a per-run StepCachedUNet around the shared UNet; with `compiled` (and the
    model loaded with torch.compile on), the model's CompiledUNet."""
    cls = pipeline_class(loaded.family, with_adapter=adapter is not None)
    expected, optional = cls._get_signature_keys(cls)
    components = {name: loaded.components.get(name) for name in expected}
    components["scheduler"] = scheduler
    if step_cache:
        from pipelines.fast.step_cache import StepCachedUNet

        # the top 30% of the noise schedule always in full (see the measurements in step_cache.py)
        full_above = 0.7 * scheduler.config.get("num_train_timesteps", 1000)
        components["unet"] = StepCachedUNet(components["unet"], step_cache, full_above=full_above)
    elif compiled and loaded.fast is not None and loaded.fast.compile:
        from pipelines.fast.compiled import compiled_unet

        components["unet"] = compiled_unet(loaded)
    if adapter is not None:
        components["adapter"] = adapter
    extra = {"requires_safety_checker": False} if "requires_safety_checker" in optional else {}
    pipe = cls(**components, **extra)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def uses_guidance(loaded: LoadedModel, guidance_scale: float) -> bool:
    return guidance_scale > 1.0 and getattr(loaded.components["unet"].config, "time_cond_proj_dim", None) is None


def check_prompt_lengths(loaded: LoadedModel, request: GenerationRequest) -> None:
    """CLIP reads a fixed number of tokens; a longer prompt would be cut silently, so it is refused."""
    pairs = [("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2")]
    for tokenizer_name, encoder_name in pairs:
        tokenizer, encoder = loaded.components.get(tokenizer_name), loaded.components.get(encoder_name)
        if tokenizer is None:
            continue
        window = getattr(getattr(encoder, "config", None), "max_position_embeddings", None) or 77
        limit = min(int(min(tokenizer.model_max_length, window)), window) - 2  # minus start and end tokens
        for field_name in ("prompt", "negative_prompt"):
            text = getattr(request, field_name)
            with loaded.text_lock:
                count = len(tokenizer(text, truncation=False, add_special_tokens=False).input_ids)
            if count > limit:
                raise InvalidRequest(field_name, f"is {count} tokens long; {loaded.spec.key!r} reads at most "
                                     f"{limit} tokens, so the rest would be ignored: shorten it")


def encode_prompts(loaded: LoadedModel, pipe, request: GenerationRequest) -> PromptEmbeddings:
    """Text encoding, serialised per model: the fast CLIP tokenizer must not be used by two threads."""
    guidance = uses_guidance(loaded, request.guidance_scale)
    with loaded.text_lock, torch.inference_mode():
        if loaded.family == "sdxl":
            pos, neg, pooled, neg_pooled = pipe.encode_prompt(
                prompt=request.prompt, device=loaded.device, num_images_per_prompt=1,
                do_classifier_free_guidance=guidance, negative_prompt=request.negative_prompt or None)
            kwargs = {"prompt_embeds": pos, "pooled_prompt_embeds": pooled}
            if guidance:
                kwargs.update(negative_prompt_embeds=neg, negative_pooled_prompt_embeds=neg_pooled)
        else:
            pos, neg = pipe.encode_prompt(request.prompt, loaded.device, 1, guidance,
                                          negative_prompt=request.negative_prompt or None)
            kwargs = {"prompt_embeds": pos}
            if guidance:
                kwargs["negative_prompt_embeds"] = neg
    return PromptEmbeddings(kwargs)


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
               adapter=None, conditions: list[Image.Image] | None = None) -> list[Image.Image]:
    """Denoise and decode one image per seed. The caller holds the model's weights lock."""
    images = []
    embeddings = None
    for k, seed in enumerate(seeds):
        progress = _Progress(request, hooks, k)
        progress.check_stop()
        scheduler = build_scheduler(request.scheduler, loaded.base_scheduler_config, noise_seeds=[seed])
        # LoRA runs change the UNet's modules while they last: they use the plain UNet, as cached runs do
        pipe = build_pipeline(loaded, scheduler, adapter, step_cache=request.step_cache,
                              compiled=not request.loras)
        if embeddings is None:
            embeddings = encode_prompts(loaded, pipe, request)
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

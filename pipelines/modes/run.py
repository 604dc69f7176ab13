"""The runs that start from, or end in, a picture: image to image and inpainting (A1111's img2img), and text to
image with the hires fix. They use the text-to-image pieces of pipelines.generation (conditioning,
denoise_one, decoding) and the model's shared weights; nothing here holds state between requests."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pipelines import previews
from pipelines.components import LoadedModel
from pipelines.modes import LATENT_UPSCALERS
from pipelines.modes.prepare import PreparedPicture, latent_mask, prepare_picture
from pipelines.modes.start import Start
from pipelines.modes.validation import hires_size
from pipelines.requests import GenerationRequest, InvalidRequest

_RESAMPLERS = {"None": Image.LANCZOS, "Lanczos": Image.LANCZOS, "Nearest": Image.NEAREST}


def run_with_picture(loaded: LoadedModel, request: GenerationRequest, seeds: list[int], variation_seeds: list[int],
                     hooks, sampler, embeddings, *, adapter=None, conditions=None) -> list[Image.Image]:
    """One image per (seed, variation seed), each handed to `hooks.on_image` as soon as it is made."""
    run = _run_img2img if request.init_image is not None else _run_hires
    return run(loaded, request, list(zip(seeds, variation_seeds)), hooks, sampler, embeddings, adapter, conditions)


def planned_steps(sampler, steps: int, start: Start) -> int:
    """How many sampler steps a run from `start` takes (what the progress bar counts)."""
    return start.steps(steps, sampler.spec.is_k_sampler)[1]


def unet_extra_channels(loaded: LoadedModel, latent_size, picture: torch.Tensor | None = None,
                        mask: torch.Tensor | None = None) -> torch.Tensor:
    """What an inpainting UNet reads beside the latents, in diffusers' order: the mask (1 = repaint, rounded,
    at the latent size) and the latents of the picture with the masked area grey (0 in [-1, 1]). No picture:
    masked all over (text to image and image to image, as A1111 conditions them)."""
    unet, vae = loaded.components["unet"], loaded.components["vae"]
    latent_channels = unet.config.out_channels
    if unet.config.in_channels != 2 * latent_channels + 1:
        raise InvalidRequest("model", f"{loaded.spec.key!r}: its UNet takes {unet.config.in_channels} input channels;"
                                      f" {latent_channels} (text to image) or {2 * latent_channels + 1} (inpainting)"
                                      " are supported")
    h, w = latent_size
    scale = 2 ** (len(vae.config.block_out_channels) - 1)
    if picture is None:
        picture, mask = torch.zeros(1, 3, h * scale, w * scale), torch.ones(1, 1, h * scale, w * scale)
    mask = torch.round(mask)
    masked_latents = previews.encode(vae, picture * (1 - mask))  # the mode: the same for every image
    small = F.interpolate(mask, size=(h, w))
    dtype = unet.dtype
    return torch.cat([small.to(loaded.device, dtype), masked_latents.to(loaded.device, dtype)], dim=1)


def _decode(loaded: LoadedModel, latents: torch.Tensor) -> Image.Image:
    return previews.decode(loaded.components["vae"], latents)[0]


def _run_img2img(loaded, request, seeds, hooks, sampler, embeddings, adapter, conditions) -> list[Image.Image]:
    from pipelines.generation import _Progress, conditioning, denoise_one, latent_shape

    picture: PreparedPicture = prepare_picture(request)
    if request.denoising_strength == 0:  # nothing is denoised: the input itself, not its VAE round trip
        return [_Progress(request, hooks, k, len(seeds)).deliver(picture.unchanged.copy()) for k in range(len(seeds))]
    sized = request.with_(width=picture.size[0], height=picture.size[1])  # outpainting grows the canvas
    latent_hw = latent_shape(loaded, sized)[-2:]
    vae = loaded.components["vae"]
    pixels = previews.to_tensor([picture.pixels])
    keep, extras, mask = None, None, None
    if picture.mask is not None:
        repaint = torch.from_numpy(latent_mask(picture.mask, (latent_hw[1], latent_hw[0])))
        keep = (1 - repaint).view(1, 1, *latent_hw)
        mask = torch.from_numpy(np.asarray(picture.mask, dtype=np.float32) / 255.0)[None, None]
    unet = loaded.components["unet"]
    if unet.config.in_channels != unet.config.out_channels:
        extras = unet_extra_channels(loaded, latent_hw, pixels if mask is not None else None, mask)
    template = conditioning(loaded, sized, embeddings, adapter=adapter, conditions=conditions, extra_channels=extras)
    start = Start(previews.encode_distribution(vae, pixels), request.denoising_strength, keep=keep,
                  masked_content=request.masked_content or "original")
    per_image = planned_steps(sampler, request.steps, start)
    images = []
    for k, (seed, variation_seed) in enumerate(seeds):
        progress = _Progress(request, hooks, k, len(seeds), per_image=per_image, size=picture.size)
        progress.check_stop()
        latents = denoise_one(loaded, sized, sampler, template, seed, progress, start=start,
                              variation_seed=variation_seed)
        images.append(progress.deliver(picture.finish(_decode(loaded, latents))))
    return images


def _upscaled_start(loaded, first: torch.Tensor, request: GenerationRequest, size: tuple[int, int]) -> Start:
    """The first pass, brought to the hires size: its latent interpolated (a Latent mode), or its picture
    resized and encoded again (an image resampler)."""
    width, height = size
    if request.hires_upscaler in LATENT_UPSCALERS:
        mode, antialias = LATENT_UPSCALERS[request.hires_upscaler]
        scale = 2 ** (len(loaded.components["vae"].config.block_out_channels) - 1)
        source = F.interpolate(first.float(), size=(height // scale, width // scale), mode=mode, antialias=antialias)
    else:
        picture = _decode(loaded, first).resize((width, height), _RESAMPLERS[request.hires_upscaler])
        source = previews.encode_distribution(loaded.components["vae"], previews.to_tensor([picture]))
    return Start(source, request.hires_denoising, exact_steps=True)


def _run_hires(loaded, request, seeds, hooks, sampler, embeddings, adapter, conditions) -> list[Image.Image]:
    from pipelines.generation import _Progress, conditioning, denoise_one

    size = hires_size(request)
    second_steps = request.hires_steps or request.steps
    big = request.with_(width=size[0], height=size[1], steps=second_steps)
    template = conditioning(loaded, request, embeddings, adapter=adapter, conditions=conditions)
    big_conditions = [c.resize(size, Image.BILINEAR) for c in conditions] if conditions else conditions
    big_template = conditioning(loaded, big, embeddings, adapter=adapter, conditions=big_conditions)
    denoise = request.hires_denoising > 0
    second = planned_steps(sampler, second_steps, Start(None, request.hires_denoising, exact_steps=True)) \
        if denoise else 0
    per_image = request.steps + second
    images = []
    for k, (seed, variation_seed) in enumerate(seeds):
        progress = _Progress(request, hooks, k, len(seeds), per_image=per_image, run=request.steps)
        progress.check_stop()
        first = denoise_one(loaded, request, sampler, template, seed, progress, variation_seed=variation_seed)
        if progress.skipped_at is not None:  # Skip during the first pass: that pass's picture, no second
            images.append(progress.deliver(_decode(loaded, first)))
            continue
        start = _upscaled_start(loaded, first, request, size)
        if not denoise:  # strength 0: the upscaled first pass as it is
            latents = start.source if isinstance(start.source, torch.Tensor) else \
                previews.sample_latents(loaded.components["vae"], start.source)
            images.append(progress.deliver(_decode(loaded, latents)))
            continue
        progress = _Progress(request, hooks, k, len(seeds), per_image=per_image, offset=request.steps, run=second,
                             size=size)
        latents = denoise_one(loaded, big, sampler, big_template, seed, progress, start=start,
                              variation_seed=variation_seed)
        images.append(progress.deliver(_decode(loaded, latents)))
    return images

"""Turning latents into pictures: the full VAE decode for results, a cheap linear preview for progress.

The preview is a fixed per-model linear map latent channels -> RGB (plus a bias), fitted once from the
model's own VAE: a few smooth synthetic colour images are encoded, and least squares relates each latent
pixel to the average colour of the 8x8 block it came from. That costs one small encode per model, then a
preview is a matrix product, cheap enough for every step on any model, which a real decode of a 1024px
SDXL latent is not. It works for any VAE, so no hard-coded per-family constants are needed.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

PROBE_IMAGES = 12
PROBE_SIZE = 64


def _latents_mean_std(vae, latents: torch.Tensor):
    """SDXL-style per-channel latent mean/std as broadcastable tensors, or None when the VAE has none."""
    mean, std = getattr(vae.config, "latents_mean", None), getattr(vae.config, "latents_std", None)
    if mean is None or std is None:
        return None
    shape = (1, latents.shape[1], 1, 1)
    as_tensor = lambda values: torch.tensor(values).view(shape).to(latents.device, latents.dtype)
    return as_tensor(mean), as_tensor(std)


def _shift(vae) -> float | None:
    return getattr(vae.config, "shift_factor", None) or None


def pipeline_latents_to_vae(vae, latents: torch.Tensor) -> torch.Tensor:
    """Undo the pipeline's latent scaling, as diffusers' pipelines do before decoding: SDXL-style mean/std
    when the VAE has them (`latents * std / scaling + mean`), else `/ scaling`, then SD3-style `+ shift`."""
    stats = _latents_mean_std(vae, latents)
    if stats is not None:
        return latents * stats[1] / vae.config.scaling_factor + stats[0]
    latents = latents / vae.config.scaling_factor
    shift = _shift(vae)
    return latents + shift if shift is not None else latents


def vae_latents_to_pipeline(vae, latents: torch.Tensor) -> torch.Tensor:
    """The inverse: what diffusers' image-to-image pipelines do after encoding."""
    stats = _latents_mean_std(vae, latents)
    if stats is not None:
        return (latents - stats[0]) * vae.config.scaling_factor / stats[1]
    shift = _shift(vae)
    if shift is not None:
        latents = latents - shift
    return latents * vae.config.scaling_factor


def _vae_dtype(vae) -> torch.dtype:
    return next(vae.parameters()).dtype


def float32_vae(vae):
    """`vae` itself when it already computes in float32, else a float32 copy: the shared VAE is never
    cast in place (another request may be using it)."""
    if _vae_dtype(vae) == torch.float32:
        return vae
    import copy

    # nn.Module.to, not diffusers' override, which warns about casting a loaded model by hand
    return torch.nn.Module.to(copy.deepcopy(vae), torch.float32)


def decode_needs_upcast(vae) -> bool:
    """diffusers' rule (SDXL pipelines): a float16 VAE flagged `force_upcast` overflows, decode in float32."""
    return _vae_dtype(vae) == torch.float16 and bool(getattr(vae.config, "force_upcast", False))


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """(N, 3, H, W) in [-1, 1] -> RGB PIL images, exactly as diffusers' VaeImageProcessor.postprocess:
    denormalised in the decoder's own dtype, then float32, * 255, rounded half to even."""
    images = (images * 0.5 + 0.5).clamp(0, 1)
    array = images.cpu().permute(0, 2, 3, 1).float().numpy()
    array = (array * 255).round().astype("uint8")
    return [Image.fromarray(a, "RGB") for a in array]


@torch.inference_mode()
def decode_tensor(vae, latents: torch.Tensor, *, upcast_vae=None) -> torch.Tensor:
    """Pipeline latents -> images in [-1, 1] with the shared VAE, following diffusers: a float16 VAE with
    `force_upcast` decodes in float32 (`upcast_vae`, a float32 copy kept by the caller, or a copy made here)."""
    if decode_needs_upcast(vae):
        vae = upcast_vae if upcast_vae is not None else float32_vae(vae)
    device = next(vae.parameters()).device
    scaled = pipeline_latents_to_vae(vae, latents.to(device, _vae_dtype(vae)))
    return vae.decode(scaled, return_dict=False)[0]


def decode(vae, latents: torch.Tensor, *, upcast_vae=None) -> list[Image.Image]:
    """Full-quality decode of pipeline latents to PIL images (what diffusers' `output_type="pil"` gives)."""
    return to_pil(decode_tensor(vae, latents, upcast_vae=upcast_vae))


def to_tensor(images: list[Image.Image]) -> torch.Tensor:
    """RGB PIL images -> (N, 3, H, W) float32 in [-1, 1] (what the VAE encodes)."""
    array = np.stack([np.asarray(image.convert("RGB"), dtype=np.float32) for image in images])
    return torch.from_numpy(array).permute(0, 3, 1, 2) / 127.5 - 1.0


@torch.inference_mode()
def encode_distribution(vae, images: torch.Tensor):
    """The VAE's latent distribution of (N, 3, H, W) images in [-1, 1], on the VAE's device. A float16 VAE
    flagged `force_upcast` encodes in float32, as diffusers' SDXL image-to-image pipeline does."""
    if decode_needs_upcast(vae):
        vae = float32_vae(vae)
    parameters = next(vae.parameters())
    return vae.encode(images.to(parameters.device, parameters.dtype)).latent_dist


@torch.no_grad()  # not inference_mode: DreamBooth trains on these tensors
def encode_mean_std(vae, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Images in [-1, 1] -> the latent distribution's (mean, std) in the pipeline's latent space, float32.

    Follows diffusers' image-to-image encode: a VAE flagged `force_upcast` encodes in float32, then SDXL-style
    mean/std normalisation or scaling (and an SD3-style shift). The std only scales."""
    if getattr(vae.config, "force_upcast", False):
        vae = float32_vae(vae)
    device = next(vae.parameters()).device
    dist = vae.encode(pixels.to(device, _vae_dtype(vae))).latent_dist
    mean = vae_latents_to_pipeline(vae, dist.mean.float())
    stats = _latents_mean_std(vae, dist.std.float())
    std = dist.std.float() * vae.config.scaling_factor / (stats[1] if stats is not None else 1.0)
    return mean, std


def sample_latents(vae, distribution, generator: torch.Generator | None = None) -> torch.Tensor:
    """Pipeline latents from an encoded distribution, as diffusers' `retrieve_latents` takes them: a sample
    drawn with `generator`, or the mode (the mean) without one."""
    latents = distribution.mode() if generator is None else distribution.sample(generator)
    return vae_latents_to_pipeline(vae, latents)


def encode(vae, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """(N, 3, H, W) images in [-1, 1] -> pipeline latents (scaling and SDXL-style mean/std as decode undoes)."""
    return sample_latents(vae, encode_distribution(vae, images), generator)


def _probe_images(rng: np.random.Generator) -> np.ndarray:
    """Smooth random colour fields plus flat primaries and greys: (N, 3, S, S) in [-1, 1]."""
    images = []
    for k in range(PROBE_IMAGES):
        if k < 6:
            colour = rng.uniform(-1, 1, size=(3, 1, 1)) if k >= 2 else np.full((3, 1, 1), 1.0 - 2 * k)
            images.append(np.broadcast_to(colour, (3, PROBE_SIZE, PROBE_SIZE)))
        else:
            coarse = torch.from_numpy(rng.uniform(-1, 1, size=(1, 3, 4, 4)).astype(np.float32))
            images.append(torch.nn.functional.interpolate(coarse, size=PROBE_SIZE, mode="bilinear",
                                                          align_corners=True)[0].numpy())
    return np.stack(images).astype(np.float32)


@torch.inference_mode()
def fit_linear_preview(vae) -> torch.Tensor:
    """A (channels + 1, 3) matrix mapping [latent, 1] to RGB in [-1, 1], fitted from this VAE."""
    pixels = torch.from_numpy(_probe_images(np.random.default_rng(0)))
    latents = encode_mean_std(vae, pixels)[0].cpu()
    factor = PROBE_SIZE // latents.shape[-1]
    targets = torch.nn.functional.avg_pool2d(pixels, factor)  # (N, 3, h, w), one colour per latent pixel
    x = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
    x = torch.cat([x, torch.ones(len(x), 1)], dim=1).double()
    y = targets.permute(0, 2, 3, 1).reshape(-1, 3).double()
    ridge = 1e-3 * torch.eye(x.shape[1], dtype=torch.float64)  # keeps the fit stable on a random VAE
    return torch.linalg.solve(x.T @ x + ridge, x.T @ y).float()


def linear_preview(matrix: torch.Tensor, latents: torch.Tensor, size: tuple[int, int]) -> Image.Image:
    """The first latent of a batch as a small RGB image, scaled to `size` (width, height)."""
    lat = latents[0].detach().float().cpu()  # (C, h, w)
    rgb = torch.einsum("chw,cd->dhw", lat, matrix[:-1]) + matrix[-1].view(3, 1, 1)
    image = to_pil(rgb.unsqueeze(0))[0]
    return image.resize(size, Image.BILINEAR)

"""The pictures DreamBooth learns from: 3 to 20 instance images of the subject, square-cropped to the
training resolution, and encoded once by the VAE (the latent distribution is kept, and sampled each step)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from pipelines.requests import InvalidRequest
from pipelines.untrusted_images import open_untrusted

MIN_INSTANCE_IMAGES, MAX_INSTANCE_IMAGES = 3, 20
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def image_files(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidRequest("images", f"not a folder: {folder}")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_instance_images(folder: str | Path) -> list[Image.Image]:
    files = image_files(folder)
    if not MIN_INSTANCE_IMAGES <= len(files) <= MAX_INSTANCE_IMAGES:
        raise InvalidRequest("images", f"DreamBooth needs {MIN_INSTANCE_IMAGES} to {MAX_INSTANCE_IMAGES} images "
                                       f"({', '.join(IMAGE_SUFFIXES)}); found {len(files)} in {folder}")
    loaded = []
    for path in files:
        with open_untrusted(path, "images") as image:  # a picture too large, or not one, is named
            loaded.append(ImageOps.exif_transpose(image).convert("RGB"))
    return loaded


def square(image: Image.Image, resolution: int) -> Image.Image:
    """Scale the shorter side to `resolution`, then cut the centred square."""
    return ImageOps.fit(image.convert("RGB"), (resolution, resolution), Image.BICUBIC, centering=(0.5, 0.5))


def to_tensor(images: list[Image.Image], resolution: int):
    import torch

    arrays = [np.asarray(square(image, resolution), dtype=np.float32) / 127.5 - 1.0 for image in images]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


@dataclass
class Latents:
    """Each image's latent distribution (mean, std), already scaled as the UNet sees latents."""

    mean: "object"
    std: "object"

    def sample(self, index, generator):
        import torch

        noise = torch.randn(self.mean[index].shape, generator=generator).to(self.mean.device, self.mean.dtype)
        return self.mean[index] + self.std[index] * noise


def encode(vae, images: list[Image.Image], resolution: int, batch: int = 4) -> Latents:
    """Each image's latent distribution in the UNet's latent space, encoded as diffusers' pipelines encode
    (float32 for a VAE flagged force_upcast; SDXL-style latents_mean/std or scaling, SD3-style shift)."""
    import torch

    from pipelines.previews import encode_mean_std

    pixels = to_tensor(images, resolution)
    means, stds = [], []
    for start in range(0, len(pixels), batch):
        mean, std = encode_mean_std(vae, pixels[start:start + batch])
        means.append(mean)
        stds.append(std)
    return Latents(torch.cat(means), torch.cat(stds))

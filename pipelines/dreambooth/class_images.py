"""Prior-preservation images: what the base model draws for the class prompt ("a photo of a dog"), made
before training and cached, so that learning "sks dog" does not make every dog look like it.

The cache folder is named after the base model, the prompt and the resolution; images already there are
reused and only the missing ones are generated (image k always from seed + k, so a cache filled in two
sittings equals one filled at once).
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Callable

from PIL import Image

from pipelines.dreambooth.dataset import image_files
from pipelines.dreambooth.sidecar import atomic_write_text

CLASS_IMAGE_STEPS = 25
CLASS_GUIDANCE = 7.0


def class_images_folder(root: str | Path, model: str, prompt: str, resolution: int) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")[:40] or "class"
    digest = hashlib.sha256(f"{model}\n{prompt}\n{resolution}".encode()).hexdigest()[:10]
    return Path(root) / f"{slug}-{resolution}-{digest}"


def _save_png(image: Image.Image, target: Path) -> None:
    temporary = target.with_name(f".{target.name}.tmp")
    image.save(temporary, format="PNG")
    temporary.replace(target)


def ensure_class_images(components: dict, prompt: str, count: int, folder: str | Path, resolution: int, *,
                        seed: int = 0, model: str = "", steps: int = CLASS_IMAGE_STEPS,
                        on_progress: Callable[[int, int], None] | None = None,
                        should_stop: Callable[[], bool] | None = None) -> None:
    """`count` images of `prompt` from the base model in `folder`, generating only the missing ones."""
    import torch

    from pipelines.checkpoints.folders import text_to_image_pipeline

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "class.json", json.dumps({"prompt": prompt, "model": model,
                                                         "resolution": resolution}) + "\n")
    pipeline = None
    for index in range(count):
        target = folder / f"class_{index:04d}.png"
        if target.exists():
            continue
        if should_stop is not None and should_stop():
            break
        if pipeline is None:
            scheduler = components["scheduler"]  # a fresh one: schedulers keep per-run state
            pipeline = text_to_image_pipeline({**components, "scheduler": type(scheduler).from_config(scheduler.config)})
            pipeline.set_progress_bar_config(disable=True)
        generator = torch.Generator("cpu").manual_seed(seed + index)
        with torch.no_grad():
            image = pipeline(prompt, height=resolution, width=resolution, num_inference_steps=steps,
                             guidance_scale=CLASS_GUIDANCE, generator=generator).images[0]
        _save_png(image, target)
        if on_progress is not None:
            on_progress(index + 1, count)


def read_class_images(folder: str | Path, count: int) -> list[Image.Image]:
    files = [p for p in image_files(folder) if p.name.startswith("class_")][:count]
    loaded = []
    for path in files:
        with Image.open(path) as image:
            loaded.append(image.convert("RGB"))
    return loaded

"""What crosses the line between the studio (UI, CLI, API) and the model code: frozen dataclasses."""
from __future__ import annotations

import numbers
import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

from PIL import Image


class InvalidRequest(ValueError):
    """A request field holds a value outside what is allowed. The message names the field and the range."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


def shown(value: Any, limit: int = 60) -> str:
    """A value as an error message quotes it: short, and never failing (a 5000-digit int has no str())."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - whatever a client sent, the message must still be made
        text = f"a {type(value).__name__}"
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


@dataclass(frozen=True)
class AdapterInput:
    """One condition for T2I-Adapter generation: a map (or a photo to extract one from) and its weight."""

    kind: str
    image: Image.Image
    weight: float = 1.0
    preprocess: bool = False
    options: tuple[tuple[str, Any], ...] = ()  # preprocessor settings, e.g. (("low", 100), ("high", 200))

    def __post_init__(self):
        if isinstance(self.options, dict):
            if not all(isinstance(key, str) for key in self.options):
                raise InvalidRequest("adapters", f"preprocessor option names must be text, got {shown(self.options)}")
            object.__setattr__(self, "options", tuple(sorted(self.options.items())))


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    negative_prompt: str = ""
    model: str = "shapes"
    scheduler: str = "Euler a"  # the sampler, by A1111's name ("DPM++ 2M"); older combined names accepted
    schedule_type: str = "Automatic"  # A1111's "Schedule type": Automatic (the sampler's own), Karras, ...
    steps: int = 20
    guidance_scale: float = 7.0
    width: int = 128
    height: int = 128
    seed: int = -1  # -1: a random seed, reported in the result
    num_images: int = 1
    adapters: tuple[AdapterInput, ...] = ()
    adapter_conditioning_factor: float = 1.0  # SDXL adapters only: fraction of steps that use the condition
    loras: tuple[tuple[str, float], ...] = ()  # (path or key, weight)
    clip_skip: int = 1  # A1111's "Clip skip": text from the N-th last CLIP layer (SDXL ignores it, as A1111 does)
    # Seed variations, as AUTOMATIC1111's "Variation seed" / "Variation seed strength": the starting noise is
    # slerp(strength, noise(seed), noise(variation_seed)) (pipelines/noise.py); -1 picks a random one.
    variation_seed: int = -1
    variation_strength: float = 0.0
    batch_count: int = 1  # runs of num_images each: batch_count * num_images images, seeds in order
    # Image to image, inpainting and outpainting (pipelines/modes); names as pipelines/metadata writes them.
    init_image: Image.Image | None = None  # the picture to start from; with it, width x height is the output
    denoising_strength: float | None = None  # 0 (the picture back) to 1 (all new); None: 0.75 with init_image
    resize_mode: str = "Just resize"  # how init_image becomes width x height: or "Crop and resize", "Resize and fill"
    mask: Image.Image | None = None  # inpainting: white (or, with transparency, opaque) = repaint
    mask_blur: int | None = None  # pixels; None: 4 when inpainting
    inpaint_area: str | None = None  # "Whole picture" or "Only masked"; None: Whole picture when inpainting
    inpaint_padding: int = 32  # Only masked: pixels kept around the masked region (A1111's "Masked area padding")
    masked_content: str | None = None  # "original", "fill", "latent noise", "latent nothing"; None: original
    outpaint_pixels: int = 0  # outpainting: the canvas grows this much on each of outpaint_directions
    outpaint_directions: tuple[str, ...] = ()  # "left", "right", "up", "down"
    # Hires fix (text to image): width x height first, then upscaled hires_scale times and denoised again.
    hires_scale: float = 1.0  # 1: off
    hires_steps: int = 0  # steps of the second pass; 0: the same as `steps`
    hires_upscaler: str = "Latent"  # a latent mode ("Latent", "Latent (nearest)", ...) or an image resampler
    hires_denoising: float = 0.7  # denoising strength of the second pass
    step_cache: int = 0  # 0: off; N: the UNet's deep features are recomputed every N-th call (fast/step_cache.py)

    def __post_init__(self):
        # Lists are accepted for convenience and frozen into tuples, so a request can never change.
        object.__setattr__(self, "adapters", _frozen_list("adapters", self.adapters))
        object.__setattr__(self, "loras", tuple(_lora_pair(item) for item in _frozen_list("loras", self.loras)))
        if isinstance(self.outpaint_directions, (list, tuple)):
            object.__setattr__(self, "outpaint_directions", tuple(self.outpaint_directions))

    def with_(self, **changes) -> "GenerationRequest":
        return replace(self, **changes)

    @property
    def mode(self) -> str:
        """The generation mode (pipelines/families.MODES): inpaint, img2img, adapter or txt2img."""
        if self.init_image is not None and (self.mask is not None or self.outpaint_pixels):
            return "inpaint"
        if self.init_image is not None:
            return "img2img"
        return "adapter" if self.adapters else "txt2img"

    @property
    def hires(self) -> bool:
        return self.hires_scale > 1 if isinstance(self.hires_scale, (int, float)) else False

    def to_json_dict(self) -> dict:
        """Plain values only (condition images, the init picture and the mask are described, not embedded)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "adapters":
                value = [{"kind": a.kind, "weight": a.weight, "preprocess": a.preprocess,
                          "options": dict(a.options)} for a in value]
            elif f.name == "loras":
                value = [list(pair) for pair in value]
            elif f.name == "outpaint_directions":
                value = list(value)
            elif isinstance(value, Image.Image):  # init_image, mask: described, not embedded
                value = {"width": value.width, "height": value.height}
            out[f.name] = value
        return out


def _frozen_list(name: str, value) -> tuple:
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, (list, tuple)):
        raise InvalidRequest(name, f"must be a list, got {shown(value)}")
    return tuple(value)


def _lora_pair(item) -> tuple[str, float]:
    """(key or path, weight) of one LoRA; the weight's range is validation's to check."""
    if not (isinstance(item, (list, tuple)) and len(item) == 2):
        raise InvalidRequest("loras", f"each LoRA is (key or path, weight), got {shown(item)}")
    ref, weight = item
    if not isinstance(ref, (str, os.PathLike)):
        raise InvalidRequest("loras", f"a LoRA is named by a key or a path, got {shown(ref)}")
    if isinstance(weight, bool) or not isinstance(weight, numbers.Real):
        raise InvalidRequest("loras", f"the weight of {shown(str(ref))} must be a number, got {shown(weight)}")
    try:
        return os.fspath(ref), float(weight)
    except (OverflowError, ValueError):
        raise InvalidRequest("loras", f"the weight of {shown(str(ref))} must be a number from -4 to 4, "
                                      f"got {shown(weight)}") from None


@dataclass(frozen=True)
class GeneratedImage:
    image: Image.Image
    seed: int
    request: GenerationRequest  # with the concrete seed of this image and num_images=1
    path: str | None = None  # where it was saved, if it was
    condition_maps: tuple[Image.Image, ...] = ()  # the maps actually fed to the adapters
    skipped_at: int | None = None  # Skip ended its sampling after this many steps (not saved, as in A1111)


@dataclass(frozen=True)
class GenerationResult:
    items: tuple[GeneratedImage, ...]
    request: GenerationRequest  # as asked, with seed resolved when it was -1
    seconds: float = 0.0

    @property
    def images(self) -> list[Image.Image]:
        return [item.image for item in self.items]

    @property
    def seeds(self) -> list[int]:
        return [item.seed for item in self.items]

    @property
    def paths(self) -> list[str]:
        return [item.path for item in self.items if item.path]


@dataclass(frozen=True)
class StepUpdate:
    """Sent to a progress callback after each denoising step."""

    step: int  # 1-based
    total: int
    preview: Image.Image | None = None  # cheap latent preview, when asked for


class GenerationCancelled(RuntimeError):
    """Raised out of `generate` when the caller's stop check asked to stop. `partial` holds the images
    finished (and saved) before the stop, when the registry knows them."""

    partial: "GenerationResult | None" = None

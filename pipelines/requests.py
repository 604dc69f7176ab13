"""What crosses the line between the studio (UI, CLI, API) and the model code: frozen dataclasses."""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from PIL import Image


class InvalidRequest(ValueError):
    """A request field holds a value outside what is allowed. The message names the field and the range."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


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
            object.__setattr__(self, "options", tuple(sorted(self.options.items())))


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    negative_prompt: str = ""
    model: str = "shapes"
    scheduler: str = "Euler a"
    steps: int = 20
    guidance_scale: float = 7.0
    width: int = 128
    height: int = 128
    seed: int = -1  # -1: a random seed, reported in the result
    num_images: int = 1
    adapters: tuple[AdapterInput, ...] = ()
    adapter_conditioning_factor: float = 1.0  # SDXL adapters only: fraction of steps that use the condition
    loras: tuple[tuple[str, float], ...] = ()  # (path or key, weight)
    step_cache: int = 0  # 0: off; N: the UNet's deep features are recomputed every N-th call (fast/step_cache.py)

    def __post_init__(self):
        # Lists are accepted for convenience and frozen into tuples, so a request can never change.
        object.__setattr__(self, "adapters", tuple(self.adapters))
        object.__setattr__(self, "loras", tuple((str(p), float(w)) for p, w in self.loras))

    def with_(self, **changes) -> "GenerationRequest":
        return replace(self, **changes)

    def to_json_dict(self) -> dict:
        """Plain values only (condition images are described, not embedded)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "adapters":
                value = [{"kind": a.kind, "weight": a.weight, "preprocess": a.preprocess,
                          "options": dict(a.options)} for a in value]
            elif f.name == "loras":
                value = [list(pair) for pair in value]
            out[f.name] = value
        return out


@dataclass(frozen=True)
class GeneratedImage:
    image: Image.Image
    seed: int
    request: GenerationRequest  # with the concrete seed of this image and num_images=1
    path: str | None = None  # where it was saved, if it was
    condition_maps: tuple[Image.Image, ...] = ()  # the maps actually fed to the adapters


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
    """Raised out of `generate` when the caller's stop check asked to stop."""

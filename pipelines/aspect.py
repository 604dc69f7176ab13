"""Aspect-ratio presets for a model family: each ratio at about the family's native area, so a wide or tall
picture costs what a square one does and stays near the sizes the model was trained on.

For SDXL this gives its well-known training buckets (1152x896, 1344x768, ...). Sizes are rounded to a
sixteenth of the native width (64 for SDXL, 32 for SD 1.x/2.x, 8 for the bundled model) and kept within
the family's limits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from pipelines.catalog import Limits

RATIOS = ((1, 1), (4, 3), (3, 4), (3, 2), (2, 3), (16, 9), (9, 16))


@dataclass(frozen=True)
class AspectPreset:
    ratio: str  # "16:9"
    width: int
    height: int

    @property
    def label(self) -> str:
        return f"{self.ratio} ({self.width}x{self.height})"


def preset_step(limits: Limits) -> int:
    return max(limits.default_width // 16 // limits.size_multiple, 1) * limits.size_multiple


def aspect_presets(limits: Limits) -> list[AspectPreset]:
    """The presets for a family's limits (`registry.limits(model)`), square first."""
    area = limits.default_width * limits.default_height
    step = preset_step(limits)

    def fit(value: float) -> int:
        rounded = max(step, round(value / step) * step)
        return min(max(rounded, limits.min_size), limits.max_size)

    presets = []
    for w, h in RATIOS:
        width, height = fit(math.sqrt(area * w / h)), fit(math.sqrt(area * h / w))
        presets.append(AspectPreset(f"{w}:{h}", width, height))
    return presets

"""Compare settings side by side: one image per (scheduler, steps, guidance) with the same seed, laid out
in a grid with text labels (schedulers across, steps/guidance down)."""
from __future__ import annotations

import random
from itertools import product
from typing import Callable

from PIL import Image, ImageDraw, ImageFont

from pipelines.requests import GenerationRequest, GenerationResult, InvalidRequest, StepUpdate

BACKGROUND = (255, 255, 255)
INK = (0, 0, 0)
MAX_CELLS = 64


def _font(height: int):
    try:
        return ImageFont.load_default(size=max(10, min(24, height // 10)))
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def labelled_grid(cells: list[list[Image.Image]], row_labels: list[str], column_labels: list[str],
                  gap: int = 4) -> Image.Image:
    """`cells[row][column]` in a grid, column labels above and row labels on the left."""
    if len(cells) != len(row_labels) or any(len(row) != len(column_labels) for row in cells):
        raise ValueError(f"cells must be {len(row_labels)} rows of {len(column_labels)} images")
    cell_w = max(image.width for row in cells for image in row)
    cell_h = max(image.height for row in cells for image in row)
    font = _font(cell_h)
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def size(text):
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        return right - left, bottom - top

    pad = 6
    left = max((size(t)[0] for t in row_labels if t), default=0)
    left = left + 2 * pad if left else 0
    top = max((size(t)[1] for t in column_labels if t), default=0)
    top = top + 2 * pad if top else 0
    width = left + len(column_labels) * (cell_w + gap) + gap
    height = top + len(row_labels) * (cell_h + gap) + gap
    grid = Image.new("RGB", (width, height), BACKGROUND)
    pen = ImageDraw.Draw(grid)
    for c, text in enumerate(column_labels):
        x = left + gap + c * (cell_w + gap) + (cell_w - size(text)[0]) // 2
        pen.text((x, pad), text, fill=INK, font=font)
    for r, text in enumerate(row_labels):
        y = top + gap + r * (cell_h + gap) + (cell_h - size(text)[1]) // 2
        pen.text((pad, y), text, fill=INK, font=font)
        for c, image in enumerate(cells[r]):
            grid.paste(image.convert("RGB"), (left + gap + c * (cell_w + gap), top + gap + r * (cell_h + gap)))
    return grid


def compare_requests(request: GenerationRequest, schedulers=None, steps_values=None, guidance_values=None):
    """(rows of requests, row labels, column labels); every cell has one image and the same seed."""
    schedulers = list(schedulers or [request.scheduler])
    steps_values = list(steps_values or [request.steps])
    guidance_values = list(guidance_values or [request.guidance_scale])
    rows = list(product(steps_values, guidance_values))
    if len(rows) * len(schedulers) > MAX_CELLS:
        raise InvalidRequest("schedulers", f"a comparison makes at most {MAX_CELLS} images, "
                             f"this one would make {len(rows) * len(schedulers)}")
    if request.seed == -1:
        request = request.with_(seed=random.SystemRandom().randint(0, 2**32 - 1))
    grid = [[request.with_(scheduler=name, steps=steps, guidance_scale=guidance, num_images=1)
             for name in schedulers] for steps, guidance in rows]
    row_labels = [f"{steps} steps, CFG {guidance:g}" for steps, guidance in rows]
    return grid, row_labels, schedulers


def compare_grid(registry, request: GenerationRequest, schedulers=None, steps_values=None, guidance_values=None,
                 on_step: Callable[[StepUpdate], None] | None = None, should_stop: Callable[[], bool] | None = None,
                 preview_every: int = 0) -> tuple[Image.Image, list[GenerationResult]]:
    grid, row_labels, column_labels = compare_requests(request, schedulers, steps_values, guidance_values)
    cells = [cell for row in grid for cell in row]
    for cell in cells:  # every cell is checked before any image is made
        registry.validate(cell)
    total = sum(cell.steps for cell in cells)
    results, done = [], 0
    for cell in cells:
        def forward(update: StepUpdate, offset=done):
            on_step(StepUpdate(step=offset + update.step, total=total, preview=update.preview))

        results.append(registry.generate(cell, on_step=forward if on_step else None, should_stop=should_stop,
                                         preview_every=preview_every))
        done += cell.steps
    images = [result.images[0] for result in results]
    width = len(column_labels)
    rows = [images[r * width:(r + 1) * width] for r in range(len(row_labels))]
    return labelled_grid(rows, row_labels, column_labels), results

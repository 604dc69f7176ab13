"""Compare settings side by side: one image per (scheduler, steps, guidance) with the same seed, laid out
in a grid with text labels (schedulers across, steps/guidance down).

    grid, results = compare_grid(registry, request, schedulers=["Euler a", "DDIM"], steps_values=[10, 20])

The Compare tab uses the same pieces: `compare_requests` to plan the cells, `run_grid` to make them with
progress, Stop and a callback per finished cell, and `labelled_grid` to show the grid as it fills in.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import product
from typing import Callable

from PIL import Image, ImageDraw, ImageFont

from pipelines.requests import GenerationRequest, GenerationResult, InvalidRequest, StepUpdate
from pipelines.schedulers import resolve_sampler

BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
EMPTY_CELL = (230, 230, 230)  # a cell whose image is not there yet
MAX_CELLS = 48
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class CellDone:
    """Sent to `run_grid`'s on_cell when the image of cell (row, column) is made."""

    row: int
    column: int
    result: GenerationResult


def _font(cell_size: int):
    try:
        return ImageFont.load_default(size=max(14, min(28, cell_size // 6)))
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def labelled_grid(cells: list[list[Image.Image | None]], row_labels: list[str], column_labels: list[str],
                  cell_size: tuple[int, int] | None = None, gap: int = 4) -> Image.Image:
    """Lay `cells[row][column]` out in a grid, row labels on the left and column labels on top.

    A `None` cell is drawn as a grey placeholder, so a grid can be shown while it fills in. Images of another
    size are scaled to `cell_size` (the first image's size when not given).
    """
    if len(cells) != len(row_labels) or any(len(row) != len(column_labels) for row in cells):
        raise ValueError(f"cells must be {len(row_labels)} rows of {len(column_labels)} images")
    if cell_size is None:
        present = [image for row in cells for image in row if image is not None]
        cell_size = present[0].size if present else (128, 128)
    cell_w, cell_h = cell_size
    font = _font(min(cell_w, cell_h))
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    pad = max(6, cell_h // 16)
    label_w = max((_text_size(measure, text, font)[0] for text in row_labels if text), default=0)
    label_h = max((_text_size(measure, text, font)[1] for text in column_labels if text), default=0)
    # A column is as wide as its widest label, so long sampler names never run into each other.
    widest = max((_text_size(measure, text, font)[0] for text in column_labels if text), default=0)
    pitch = max(cell_w, widest + pad)
    left = label_w + 2 * pad if label_w else 0
    top = label_h + 2 * pad if label_h else 0
    width = left + len(column_labels) * (pitch + gap) + gap
    height = top + len(row_labels) * (cell_h + gap) + gap
    grid = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(grid)
    for c, text in enumerate(column_labels):
        text_w, _ = _text_size(draw, text, font)
        x = left + gap + c * (pitch + gap) + (pitch - text_w) // 2
        draw.text((x, pad), text, fill=INK, font=font)
    for r, text in enumerate(row_labels):
        y0 = top + gap + r * (cell_h + gap)
        _, text_h = _text_size(draw, text, font)
        draw.text((pad, y0 + (cell_h - text_h) // 2), text, fill=INK, font=font)
        for c, image in enumerate(cells[r]):
            x0 = left + gap + c * (pitch + gap) + (pitch - cell_w) // 2
            if image is None:
                draw.rectangle((x0, y0, x0 + cell_w - 1, y0 + cell_h - 1), fill=EMPTY_CELL)
                continue
            if image.size != (cell_w, cell_h):
                image = image.resize((cell_w, cell_h), Image.Resampling.LANCZOS)
            grid.paste(image.convert("RGB"), (x0, y0))
    return grid


def compare_requests(request: GenerationRequest, schedulers=None, steps_values=None, guidance_values=None):
    """(rows of requests, row labels, column labels): schedulers across; down, every combination of the
    steps and CFG values given (a row label names the settings given). Every cell makes one image with
    the same seed (a random one when the request's is -1)."""
    schedulers = list(schedulers or [request.scheduler])
    rows = list(product(steps_values or [request.steps], guidance_values or [request.guidance_scale]))
    if len(rows) * len(schedulers) > MAX_CELLS:
        raise InvalidRequest("schedulers", f"a comparison makes at most {MAX_CELLS} images, "
                             f"this one would make {len(schedulers)} x {len(rows)} = {len(rows) * len(schedulers)}")
    if request.seed == -1:
        request = request.with_(seed=random.SystemRandom().randint(0, MAX_SEED))
    # the schedule type applies to the k-diffusion samplers; the diffusers-form ones (DDIM, ...) take none
    schedule = {name: request.schedule_type if resolve_sampler(name).spec.is_k_sampler else "Automatic"
                for name in schedulers}
    grid = [[request.with_(scheduler=name, schedule_type=schedule[name], steps=steps, guidance_scale=guidance,
                           num_images=1) for name in schedulers] for steps, guidance in rows]

    def label(steps, guidance) -> str:
        parts = ([f"steps {steps}"] if steps_values else []) + ([f"CFG {guidance:g}"] if guidance_values else [])
        return ", ".join(parts)

    return grid, [label(*row) for row in rows], schedulers


def run_grid(registry, grid: list[list[GenerationRequest]], row_labels: list[str], column_labels: list[str],
             on_step: Callable[[StepUpdate], None] | None = None, should_stop: Callable[[], bool] | None = None,
             preview_every: int = 0, on_cell: Callable[[CellDone], None] | None = None,
             user: str | None = None) -> tuple[Image.Image, list[GenerationResult]]:
    """Make every cell's image, row by row, after checking every cell; returns (labelled grid, results).

    on_step gets the progress over the whole grid (steps of all cells); on_cell a CellDone as each image is
    made; should_stop ends the run (GenerationCancelled) at the next step. Images are saved as `user`'s.
    """
    cells = [(r, c, cell) for r, row in enumerate(grid) for c, cell in enumerate(row)]
    for _, _, cell in cells:  # every cell is checked before any image is made
        registry.validate(cell)
    total = sum(cell.steps for _, _, cell in cells)
    images: list[list[Image.Image | None]] = [[None] * len(column_labels) for _ in row_labels]
    results, done = [], 0
    for r, c, cell in cells:
        def forward(update: StepUpdate, offset=done):
            on_step(StepUpdate(step=offset + update.step, total=total, preview=update.preview))

        options = {"user": user} if user is not None else {}
        result = registry.generate(cell, on_step=forward if on_step else None, should_stop=should_stop,
                                   preview_every=preview_every, **options)
        images[r][c] = result.images[0]
        results.append(result)
        done += cell.steps
        if on_cell:
            on_cell(CellDone(r, c, result))
    return labelled_grid(images, row_labels, column_labels), results


def compare_grid(registry, request: GenerationRequest, schedulers=None, steps_values=None, guidance_values=None,
                 on_step: Callable[[StepUpdate], None] | None = None, should_stop: Callable[[], bool] | None = None,
                 preview_every: int = 0, on_cell: Callable[[CellDone], None] | None = None
                 ) -> tuple[Image.Image, list[GenerationResult]]:
    grid, row_labels, column_labels = compare_requests(request, schedulers, steps_values, guidance_values)
    return run_grid(registry, grid, row_labels, column_labels, on_step, should_stop, preview_every, on_cell)

"""A labelled image grid: rows and columns named in the margins, like an X/Y plot of sampler settings."""
from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
EMPTY_CELL = (230, 230, 230)  # a cell whose image is not there yet


def _font(cell_size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=max(14, min(28, cell_size // 6)))


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

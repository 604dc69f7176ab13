"""The README's picture of the bundled model: eight held-out prompts, Euler a, 20 steps, CFG 7, seeds 0-7.

    python -m training.shapes.samples --model assets/shapes --out assets/shapes_samples.png"""
from __future__ import annotations

import argparse
import textwrap

from PIL import Image, ImageDraw

from pipelines.shapes.world import evaluation_prompts

from .evaluate import generate, load

CELL, CAPTION, COLUMNS = 128, 48, 4


def caption_sheet(images: list[Image.Image], captions: list[str]) -> Image.Image:
    rows = -(-len(images) // COLUMNS)
    sheet = Image.new("RGB", (COLUMNS * CELL, rows * (CELL + CAPTION)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (image, caption) in enumerate(zip(images, captions)):
        x, y = (i % COLUMNS) * CELL, (i // COLUMNS) * (CELL + CAPTION)
        sheet.paste(image.resize((CELL, CELL)), (x, y))
        draw.multiline_text((x + 3, y + CELL + 2), "\n".join(textwrap.wrap(caption, 24)[:3]), fill="black")
    return sheet


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="assets/shapes")
    parser.add_argument("--out", default="assets/shapes_samples.png")
    args = parser.parse_args(argv)
    prompts = [prompt for _, prompt in evaluation_prompts(8)]
    images = generate(load(args.model), prompts, list(range(len(prompts))))
    caption_sheet(images, prompts).save(args.out, optimize=True)


if __name__ == "__main__":
    main()

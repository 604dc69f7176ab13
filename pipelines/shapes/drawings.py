"""Condition maps drawn the ways people draw them, for the shapes model's adapters (training and evaluation).

The renderer's own maps (render.condition_map) are one style: 3 px outlines, Canny at 100/200, a depth
silhouette of grey 230, a shape on the 3x3 grid in one of two sizes. People draw otherwise: outlines 1-8 px
wide with a shaky hand and small gaps, on the studio's sketchpad (dark strokes on white paper, which the studio
inverts), stars of other proportions, shapes anywhere in the frame at any size, Canny edges at other
thresholds, depth maps of any brightness with soft gradients. `random_drawing` draws one such map; the scene
it returns names the shape's position and size by the regions and ranges the judge reads
(world.position_word, world.size_word), so a prompt made from it describes what was drawn.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .render import STAR_INNER, outline_points, render, shape_geometry, shape_mask
from .world import COLORS, IMAGE_SIZE, POSITIONS, REGION_BOUNDS, SHAPES, SIZE_BOUND, SIZES, Scene, is_held_out

WIDTH_RANGE = (0.18, 0.72)  # the shape's nominal width, as a fraction of the image
STAR_INNER_RANGE = (0.36, 0.64)
STROKE_RANGE = (1.0, 8.0)  # outline width in pixels of the 128-pixel map
SKETCHPAD_SIZE = 512  # the studio's canvas (studio/adapter_widgets.py)
STYLES = {"sketch": ("outline", "hand", "sketchpad"), "edge": ("canny",), "depth": ("flat", "soft")}
_SUPERSAMPLE = 4


@dataclass(frozen=True)
class Drawing:
    kind: str
    style: str
    scene: Scene  # the shape, its colours, and the words for where and how large it is drawn
    geometry: tuple[float, float, float]  # centre x, centre y, width in pixels of the 128-pixel image
    star_inner: float
    image: Image.Image  # what the studio is handed: the map, or the sketchpad's 512-pixel drawing
    mask: np.ndarray  # the drawn shape, filled

    def condition(self) -> Image.Image:
        """The 128-pixel map the adapter reads, through the studio's own preparation of an adapter input."""
        if self.image.size == (IMAGE_SIZE, IMAGE_SIZE):
            return self.image
        from pipelines.adapters.preprocess import prepare_condition
        from pipelines.requests import AdapterInput

        return prepare_condition(AdapterInput(self.kind, self.image), IMAGE_SIZE, IMAGE_SIZE)


def _unambiguous(mask: np.ndarray) -> bool:
    """The box is clearly inside one region and one size range (a centre on a region boundary would make the
    prompt's words a coin toss)."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return False
    extent = max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1) / IMAGE_SIZE
    centre = np.array([(xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2]) / IMAGE_SIZE
    near_bound = min(abs(c - b) for c in centre for b in REGION_BOUNDS)
    return near_bound > 0.025 and abs(extent - SIZE_BOUND) > 0.02


def free_geometry(rng: random.Random) -> tuple[float, float, float]:
    """A centre anywhere that keeps the shape inside the frame (2 px clear), and a width in WIDTH_RANGE."""
    width = rng.uniform(*WIDTH_RANGE) * IMAGE_SIZE
    low, high = width / 2 + 2, IMAGE_SIZE - width / 2 - 2
    return rng.uniform(low, high), rng.uniform(low, high), width


def _scene_words(shape: str, rng: random.Random, held_out: bool | None, anywhere: bool = True,
                 vary_star: bool = True):
    """Colours, a geometry (free, or with `anywhere` False the renderer's grid cells and two sizes) and the
    scene that describes them (held out of training or not); stars of any inner radius with `vary_star`."""
    from .judge import box_words

    while True:
        color, background = rng.sample(sorted(COLORS), 2)
        star_inner = rng.uniform(*STAR_INNER_RANGE) if shape == "star" and vary_star else STAR_INNER
        if anywhere:
            geometry = free_geometry(rng)
        else:
            geometry = shape_geometry(Scene(shape, color, background, rng.choice(sorted(SIZES)),
                                            rng.choice(sorted(POSITIONS))), rng)
        probe = Scene(shape, color, background, "small", "center")
        mask = shape_mask(probe, geometry, star_inner)
        if not _unambiguous(mask):
            continue
        size, position = box_words(mask)
        scene = Scene(shape, color, background, size, position)
        if held_out is None or is_held_out(scene) == held_out:
            return scene, geometry, star_inner, mask


def anywhere_scene(rng: random.Random, held_out: bool | None = False) -> tuple[Scene, tuple[float, float, float]]:
    """A scene rendered in the renderer's own style but placed anywhere at any width (WIDTH_RANGE), and its
    geometry: its words are the regions and ranges its box falls in, as the judge reads them. The UNet learns
    from these that "top left" is a region and "small" a range, not one grid cell and one width."""
    scene, geometry, _, _ = _scene_words(rng.choice(SHAPES), rng, held_out, anywhere=True, vary_star=False)
    return scene, geometry


def _wobble(points: list[tuple[float, float]], amplitude: float, rng: random.Random) -> list[tuple[float, float]]:
    """A shaky hand: a slow random displacement along the outline (a few sine waves in x and y)."""
    if amplitude <= 0:
        return points
    waves = [(rng.uniform(0.3, 1.0) * amplitude / k, k, rng.uniform(0, 2 * math.pi), rng.uniform(0, 2 * math.pi))
             for k in (1, 2, 3, 5)]
    count = len(points)
    out = []
    for index, (x, y) in enumerate(points):
        t = 2 * math.pi * index / count
        out.append((x + sum(a * math.sin(k * t + px) for a, k, px, _ in waves) / 2,
                    y + sum(a * math.sin(k * t + py) for a, k, _, py in waves) / 2))
    return out


def _strokes(points: list[tuple[float, float]], gaps: int, rng: random.Random) -> list[list[tuple[float, float]]]:
    """The closed outline as strokes, with `gaps` short pieces (3-8% of it each) left out."""
    closed = points + points[:1]
    if not gaps:
        return [closed]
    count = len(points)
    cuts = sorted(rng.sample(range(count), gaps))
    skip = {(cut + k) % count for cut in cuts for k in range(max(1, int(count * rng.uniform(0.03, 0.08))))}
    strokes, current = [], []
    for index, point in enumerate(closed):
        if index % count in skip:
            if len(current) > 1:
                strokes.append(current)
            current = []
        else:
            current.append(point)
    if len(current) > 1:
        strokes.append(current)
    return strokes


def _draw_strokes(strokes, size: int, width: float, ink: int, paper: int, scale: float = 1.0) -> Image.Image:
    """Round-capped polylines of `width` pixels (of a `size` canvas), antialiased by supersampling."""
    factor = _SUPERSAMPLE * scale
    canvas = Image.new("L", (size * _SUPERSAMPLE, size * _SUPERSAMPLE), paper)
    draw = ImageDraw.Draw(canvas)
    pen = max(1, round(width * _SUPERSAMPLE))
    for stroke in strokes:
        scaled = [(x * factor, y * factor) for x, y in stroke]
        draw.line(scaled, fill=ink, width=pen, joint="curve")
        for x, y in (scaled[0], scaled[-1]):
            draw.ellipse([x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2], fill=ink)
    return canvas.resize((size, size), Image.LANCZOS)


def _sketch(scene: Scene, geometry, star_inner: float, style: str, rng: random.Random) -> Image.Image:
    points = outline_points(scene.shape, geometry, star_inner, spacing=0.5)
    width = rng.uniform(*STROKE_RANGE)
    if style == "outline":
        return _draw_strokes([points + points[:1]], IMAGE_SIZE, width, 255, 0).convert("RGB")
    points = _wobble(points, rng.uniform(0.5, 2.5), rng)
    strokes = _strokes(points, rng.choice((0, 1, 1, 2)), rng)
    if style == "hand":
        return _draw_strokes(strokes, IMAGE_SIZE, width, 255, 0).convert("RGB")
    # The sketchpad: the studio's canvas, four times the map, dark strokes on white paper.
    scale = SKETCHPAD_SIZE / IMAGE_SIZE
    ink = rng.choice((0, 0, 64))  # the sketchpad's two brush colours
    return _draw_strokes(strokes, SKETCHPAD_SIZE, width * scale, ink, 255, scale=scale).convert("RGB")


def _edge(scene: Scene, geometry, star_inner: float, rng: random.Random) -> Image.Image | None:
    import cv2

    picture = np.asarray(render(scene, geometry=geometry, star_inner=star_inner))
    blur = rng.choice((0.0, 0.0, rng.uniform(0.5, 1.5)))
    if blur:
        picture = cv2.GaussianBlur(picture, (0, 0), blur)
    low = rng.uniform(20, 200)
    high = rng.uniform(max(low, 60), 400)
    edges = cv2.Canny(picture, low, high)
    if (edges > 0).sum() < 40:  # thresholds above this pair's contrast: no edges, nothing drawn
        return None
    return Image.fromarray(edges).convert("RGB")


def _depth(scene: Scene, geometry, star_inner: float, style: str, rng: random.Random) -> Image.Image:
    near = rng.uniform(90, 255)
    far = rng.uniform(0, min(50, near - 60))
    silhouette = shape_mask(scene, geometry, star_inner).astype(np.float32)
    ys, xs = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float32)
    if style == "soft":  # rounder towards the middle, and a floor that comes nearer towards the bottom
        cx, cy, width = geometry
        distance = np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2) / (width / 2)
        shape_value = near * (1 - rng.uniform(0.1, 0.4) * np.clip(distance, 0, 1) ** 2)
        background = far + rng.uniform(0, 30) * ys / IMAGE_SIZE
        blur = rng.uniform(1.0, 4.0)
    else:
        shape_value, background, blur = near, far, rng.uniform(0.0, 2.5)
    values = silhouette * shape_value + (1 - silhouette) * background
    image = Image.fromarray(np.clip(values, 0, 255).round().astype(np.uint8))
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    return image.convert("RGB")


def random_drawing(kind: str, rng: random.Random, held_out: bool | None = None, style: str | None = None,
                   anywhere: bool = True) -> Drawing:
    """One drawing of `kind` in a random (or the given) style, of a random shape anywhere (or, `anywhere`
    False, where the renderer puts shapes: to tell the drawing style's part from the placement's). `held_out`:
    True for a scene held out of training (evaluation), False for a training one, None for either."""
    if kind not in STYLES:
        raise ValueError(f"kind must be one of {list(STYLES)}, got {kind!r}")
    while True:
        chosen = style or rng.choice(STYLES[kind])
        scene, geometry, star_inner, mask = _scene_words(rng.choice(SHAPES), rng, held_out, anywhere)
        if kind == "sketch":
            image = _sketch(scene, geometry, star_inner, chosen, rng)
        elif kind == "edge":
            image = _edge(scene, geometry, star_inner, rng)
        else:
            image = _depth(scene, geometry, star_inner, chosen, rng)
        if image is not None:
            return Drawing(kind, chosen, scene, geometry, star_inner, image, mask)


def held_out_drawings(kind: str, count: int, seed: int = 2025, anywhere: bool = True) -> list[Drawing]:
    """`count` drawings of held-out scenes, styles in turn, from a seed training never uses."""
    rng = random.Random(seed * 7 + len(kind))
    styles = STYLES[kind]
    return [random_drawing(kind, rng, held_out=True, style=styles[k % len(styles)], anywhere=anywhere)
            for k in range(count)]

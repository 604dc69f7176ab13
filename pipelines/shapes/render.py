"""Render `Scene`s to images, and draw the three condition maps (sketch, edge, depth) of a scene."""
from __future__ import annotations

import math
import random

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .world import COLORS, IMAGE_SIZE, POSITIONS, SIZES, Scene

_SUPERSAMPLE = 4
_MARGIN = 0.04  # gap between a shape at the border and the image edge, as a fraction of the image


def shape_geometry(scene: Scene, rng: random.Random | None = None) -> tuple[float, float, float]:
    """Centre x, centre y and width of the shape in pixels; `rng` adds a small jitter."""
    width = SIZES[scene.size] * IMAGE_SIZE
    if rng is not None:
        width *= rng.uniform(0.92, 1.08)
    half = width / 2
    low, high = half + _MARGIN * IMAGE_SIZE, IMAGE_SIZE - half - _MARGIN * IMAGE_SIZE
    column, row = POSITIONS[scene.position]
    cx = (low, IMAGE_SIZE / 2, high)[column]
    cy = (low, IMAGE_SIZE / 2, high)[row]
    if rng is not None:
        cx += rng.uniform(-3, 3)
        cy += rng.uniform(-3, 3)
    return cx, cy, width


STAR_INNER = 0.5  # the star's inner radius as a fraction of its outer one (drawings may use others)


def _outline(shape: str, cx: float, cy: float, width: float,
             star_inner: float = STAR_INNER) -> list[tuple[float, float]] | None:
    """Polygon vertices for polygonal shapes; None for the circle."""
    half = width / 2
    if shape == "square":
        return [(cx - half, cy - half), (cx + half, cy - half), (cx + half, cy + half), (cx - half, cy + half)]
    if shape == "triangle":
        return [(cx, cy - half), (cx + half, cy + half), (cx - half, cy + half)]
    if shape == "star":
        points = []
        for k in range(10):
            radius = half if k % 2 == 0 else half * star_inner
            angle = -math.pi / 2 + k * math.pi / 5
            points.append((cx + radius * math.cos(angle), cy + 0.05 * half + radius * math.sin(angle)))
        return points
    return None


def outline_points(shape: str, geometry: tuple[float, float, float], star_inner: float = STAR_INNER,
                   spacing: float = 1.0) -> list[tuple[float, float]]:
    """Points along the shape's closed outline about `spacing` pixels apart (the last one near the first)."""
    cx, cy, width = geometry
    polygon = _outline(shape, cx, cy, width, star_inner)
    if polygon is None:
        count = max(12, int(math.pi * width / spacing))
        return [(cx + width / 2 * math.cos(2 * math.pi * k / count), cy + width / 2 * math.sin(2 * math.pi * k / count))
                for k in range(count)]
    points = []
    for (x0, y0), (x1, y1) in zip(polygon, polygon[1:] + polygon[:1]):
        count = max(1, int(math.hypot(x1 - x0, y1 - y0) / spacing))
        points += [(x0 + (x1 - x0) * k / count, y0 + (y1 - y0) * k / count) for k in range(count)]
    return points


def _draw(shape: str, geometry: tuple[float, float, float], size: int, fill, outline_width: int = 0,
          background=0, star_inner: float = STAR_INNER) -> Image.Image:
    scale = _SUPERSAMPLE
    mode = "RGB" if isinstance(fill, tuple) else "L"
    canvas = Image.new(mode, (size * scale, size * scale), background)
    draw = ImageDraw.Draw(canvas)
    cx, cy, width = (v * scale for v in geometry)
    polygon = _outline(shape, cx, cy, width, star_inner)
    kwargs = ({"outline": fill, "width": outline_width * scale} if outline_width else {"fill": fill})
    if polygon is None:
        draw.ellipse([cx - width / 2, cy - width / 2, cx + width / 2, cy + width / 2], **kwargs)
    else:
        if outline_width:
            draw.line(polygon + [polygon[0]], fill=fill, width=outline_width * scale, joint="curve")
        else:
            draw.polygon(polygon, fill=fill)
    return canvas.resize((size, size), Image.LANCZOS)


def render(scene: Scene, rng: random.Random | None = None,
           geometry: tuple[float, float, float] | None = None, star_inner: float = STAR_INNER) -> Image.Image:
    geometry = geometry or shape_geometry(scene, rng)
    return _draw(scene.shape, geometry, IMAGE_SIZE, COLORS[scene.color], background=COLORS[scene.background],
                 star_inner=star_inner)


def shape_mask(scene: Scene, geometry: tuple[float, float, float], star_inner: float = STAR_INNER) -> np.ndarray:
    """Boolean mask of the shape's pixels."""
    return np.asarray(_draw(scene.shape, geometry, IMAGE_SIZE, 255, star_inner=star_inner)) >= 128


def sketch_map(scene: Scene, geometry: tuple[float, float, float]) -> Image.Image:
    """White outline strokes on black, as a person would draw the shape."""
    return _draw(scene.shape, geometry, IMAGE_SIZE, 255, outline_width=3).convert("RGB")


def depth_map(scene: Scene, geometry: tuple[float, float, float]) -> Image.Image:
    """The shape bright (nearer), the background dark, with soft edges like an estimated depth map."""
    silhouette = _draw(scene.shape, geometry, IMAGE_SIZE, 230)
    return silhouette.filter(ImageFilter.GaussianBlur(1.5)).convert("RGB")


def edge_map(image: Image.Image, low: int = 100, high: int = 200) -> Image.Image:
    """Canny edges of an image, white on black."""
    import cv2  # imported here so that importing the world needs no OpenCV

    edges = cv2.Canny(np.asarray(image.convert("RGB")), low, high)
    return Image.fromarray(edges).convert("RGB")


CONDITION_KINDS = ("sketch", "edge", "depth")


def condition_map(kind: str, scene: Scene, geometry: tuple[float, float, float]) -> Image.Image:
    if kind == "sketch":
        return sketch_map(scene, geometry)
    if kind == "depth":
        return depth_map(scene, geometry)
    if kind == "edge":
        return edge_map(render(scene, geometry=geometry))
    raise ValueError(f"kind must be one of {CONDITION_KINDS}, got {kind!r}")

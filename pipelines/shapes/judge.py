"""A classical-vision judge for the shapes world: reads back what an image shows. No learned model.

Background = the colour of the image border; the shape = the largest blob that differs from it.
Class comes from solidity (area / convex-hull area) and extent (area / bounding-box area):
a five-point star is far from convex; a square fills its box; a circle fills pi/4 of it; a triangle half.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .world import ATTRIBUTES, COLORS, IMAGE_SIZE, Scene, position_word, size_word

_PALETTE_NAMES = list(COLORS)
_PALETTE = np.array([COLORS[n] for n in _PALETTE_NAMES], dtype=np.float32)
_SHAPE_THRESHOLD = 60.0  # RGB distance from the background that makes a pixel part of the shape


@dataclass(frozen=True)
class Reading:
    background: str
    color: str | None
    shape: str | None
    size: str | None
    position: str | None
    mask: np.ndarray

    def matches(self, scene: Scene, attribute: str) -> bool:
        return getattr(self, attribute) == getattr(scene, attribute)


def agreement(scenes: list[Scene], readings: list[Reading], attributes=ATTRIBUTES) -> dict[str, float]:
    """Per attribute, the share of readings that match their scene."""
    return {a: float(np.mean([r.matches(s, a) for s, r in zip(scenes, readings)])) for a in attributes}


def nearest_color(rgb: np.ndarray) -> str:
    return _PALETTE_NAMES[int(np.argmin(((_PALETTE - rgb) ** 2).sum(axis=1)))]


def _largest_blob(mask: np.ndarray) -> np.ndarray:
    import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros_like(mask, dtype=bool)
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    blob = (labels == biggest).astype(np.uint8)
    contours, _ = cv2.findContours(blob, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    filled = np.zeros_like(blob)
    cv2.drawContours(filled, contours, -1, 1, thickness=-1)  # fill holes
    return filled.astype(bool)


def _classify(mask: np.ndarray) -> str:
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contour = max(contours, key=cv2.contourArea)
    area = float(mask.sum())
    hull_area = max(cv2.contourArea(cv2.convexHull(contour)), 1.0)
    ys, xs = np.nonzero(mask)
    box_area = float((xs.max() - xs.min() + 1) * (ys.max() - ys.min() + 1))
    solidity, extent = area / hull_area, area / box_area
    if solidity < 0.90:  # drawn stars ~0.65; slightly blurred small stars ~0.8; convex shapes >= 0.95
        return "star"
    if extent > 0.89:
        return "square"
    if extent > 0.65:
        return "circle"
    return "triangle"


def shape_region(image: Image.Image) -> np.ndarray:
    """Mask of the pixels that differ from the border colour (the shape, whatever its colour)."""
    return read(image).mask


def box_words(mask: np.ndarray) -> tuple[str, str]:
    """The size and position words of a shape mask (IMAGE_SIZE square): its bounding box's larger side and
    centre, read as ranges and regions (world.size_word, world.position_word)."""
    ys, xs = np.nonzero(mask)
    extent = max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1) / IMAGE_SIZE
    return size_word(extent), position_word((xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2, IMAGE_SIZE)


def read(image: Image.Image) -> Reading:
    rgb = np.asarray(image.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR), dtype=np.float32)
    border = np.concatenate([rgb[:2].reshape(-1, 3), rgb[-2:].reshape(-1, 3),
                             rgb[:, :2].reshape(-1, 3), rgb[:, -2:].reshape(-1, 3)])
    background_rgb = np.median(border, axis=0)
    distance = np.sqrt(((rgb - background_rgb) ** 2).sum(axis=2))
    mask = _largest_blob(distance > _SHAPE_THRESHOLD)
    background = nearest_color(background_rgb)
    if mask.sum() < 20:
        return Reading(background, None, None, None, None, mask)
    import cv2

    core = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    color = nearest_color(np.median(rgb[core if core.sum() >= 10 else mask], axis=0))
    size, position = box_words(mask)
    return Reading(background, color, _classify(mask), size, position, mask)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0

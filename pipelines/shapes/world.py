"""The world the bundled `shapes` model draws: one filled shape on a plain background.

A `Scene` names every attribute; `caption()` says some or all of them in words, following a small
grammar with paraphrases. Attributes left out of a caption are free.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

IMAGE_SIZE = 128

SHAPES = ("circle", "square", "triangle", "star")
COLORS = {
    "red": (220, 40, 40),
    "orange": (245, 140, 30),
    "yellow": (240, 220, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "purple": (140, 60, 190),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
    "gray": (128, 128, 128),
}
SIZES = {"small": 0.30, "large": 0.55}  # shape width as a fraction of the image width
POSITIONS = {  # grid cell of the shape's centre: (column, row), each in {0, 1, 2}
    "center": (1, 1), "left": (0, 1), "right": (2, 1), "top": (1, 0), "bottom": (1, 2),
    "top left": (0, 0), "top right": (2, 0), "bottom left": (0, 2), "bottom right": (2, 2),
}
ATTRIBUTES = ("shape", "color", "background", "size", "position")
# The words name regions and ranges, not only the grid cells and two widths the renderer's scenes use: a shape
# whose bounding-box centre lies in the left 40% of the width and the middle band of the height is "left", one
# whose box is at least 42% of the image wide (or tall) is "large". The judge reads images so, and drawings
# anywhere in the frame are described so (`position_word`, `size_word`).
REGION_BOUNDS = (0.4, 0.6)  # column / row boundaries, as fractions of the image
SIZE_BOUND = 0.42  # the larger side of the bounding box, as a fraction of the image


def position_word(cx: float, cy: float, size: float = IMAGE_SIZE) -> str:
    """The position word of a bounding-box centre (pixels of an image `size` wide)."""
    low, high = REGION_BOUNDS[0] * size, REGION_BOUNDS[1] * size
    column = 0 if cx < low else 2 if cx > high else 1
    row = 0 if cy < low else 2 if cy > high else 1
    return next(name for name, cell in POSITIONS.items() if cell == (column, row))


def size_word(extent: float) -> str:
    """The size word of a bounding box whose larger side is `extent` of the image."""
    return "small" if extent < SIZE_BOUND else "large"


@dataclass(frozen=True)
class Scene:
    shape: str
    color: str
    background: str
    size: str
    position: str

    def __post_init__(self):
        for name, allowed in (("shape", SHAPES), ("color", COLORS), ("background", COLORS),
                              ("size", SIZES), ("position", POSITIONS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {sorted(allowed)}, got {getattr(self, name)!r}")
        if self.color == self.background:
            raise ValueError("the shape colour and the background colour must differ")


def random_scene(rng: random.Random) -> Scene:
    color, background = rng.sample(sorted(COLORS), 2)
    return Scene(rng.choice(SHAPES), color, background, rng.choice(sorted(SIZES)), rng.choice(sorted(POSITIONS)))


def all_scenes() -> list[Scene]:
    return [Scene(s, c, b, z, p) for s in SHAPES for c in COLORS for b in COLORS if c != b
            for z in SIZES for p in POSITIONS]


_PLACE_PHRASES = {
    "center": ["in the center", "in the middle", "centered"],
    "left": ["on the left", "at the left"],
    "right": ["on the right", "at the right"],
    "top": ["at the top", "on top"],
    "bottom": ["at the bottom", "on the bottom"],
}


def _place_phrase(position: str, rng: random.Random) -> str:
    if position in _PLACE_PHRASES:
        return rng.choice(_PLACE_PHRASES[position])
    return rng.choice([f"in the {position}", f"at the {position}", f"{position} corner"])


def caption(scene: Scene, rng: random.Random, keep: frozenset[str] | None = None) -> str:
    """Describe `scene`, saying only the attributes in `keep` (all of them when None); the shape is
    named when kept, else called "shape"."""
    keep = frozenset(ATTRIBUTES) if keep is None else keep
    noun = scene.shape if "shape" in keep else "shape"
    adjectives = [a for a in (scene.size if "size" in keep else None,
                              scene.color if "color" in keep else None) if a]
    place = scene.position if "position" in keep else None
    background = scene.background if "background" in keep else None
    style = rng.randrange(3)
    if style == 0:  # "a large red circle in the top left on a blue background"
        text = " ".join(["a", *adjectives, noun])
        if place:
            text += " " + _place_phrase(place, rng)
        if background:
            text += " " + rng.choice([f"on a {background} background", f"against {background}",
                                      f"with a {background} background"])
        return text
    if style == 1:  # "small green star, bottom right, white background"
        parts = [" ".join([*adjectives, noun])]
        if place:
            parts.append(place)
        if background:
            parts.append(f"{background} background")
        return ", ".join(parts)
    # "a blue background with a large red circle at the top left"
    text = " ".join(["a", *adjectives, noun])
    if place:
        text += " " + _place_phrase(place, rng)
    if background:
        text = f"a {background} background with " + text
    return text


def random_keep(rng: random.Random, p_each: float = 0.8) -> frozenset[str]:
    """A random subset of attributes to mention: each kept with probability `p_each`."""
    return frozenset(a for a in ATTRIBUTES if rng.random() < p_each)


def is_held_out(scene: Scene) -> bool:
    """About 10% of all scenes never appear in training: prompts that fully describe one of them cannot
    have been seen verbatim, so they measure what the model understood rather than what it memorised."""
    import zlib

    key = f"{scene.shape}|{scene.color}|{scene.background}|{scene.size}|{scene.position}"
    return zlib.crc32(key.encode()) % 10 == 0


def training_scene(rng: random.Random) -> Scene:
    while True:
        scene = random_scene(rng)
        if not is_held_out(scene):
            return scene


def evaluation_prompts(count: int, seed: int = 1234) -> list[tuple[Scene, str]]:
    """`count` held-out scenes, each with a caption that names all of its attributes."""
    rng = random.Random(seed)
    held_out = [s for s in all_scenes() if is_held_out(s)]
    return [(scene, caption(scene, rng)) for scene in rng.sample(held_out, count)]

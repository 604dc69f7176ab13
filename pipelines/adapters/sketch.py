"""Line maps for the sketch, edge and line-art adapters: white lines on black, like their training data.

The learned extractors (PidiNet, HED) come from controlnet-aux, an optional extra that needs torchvision;
they are imported inside the function, and when they cannot be the built-in classical extractor runs instead
and the caller is told so.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def canny(image: Image.Image, low: int = 100, high: int = 200) -> Image.Image:
    """OpenCV Canny edges of an RGB image, white on black."""
    import cv2

    edges = cv2.Canny(np.asarray(image.convert("RGB")), int(low), int(high))
    return Image.fromarray(edges).convert("RGB")


def classical_sketch(image: Image.Image, threshold: float = 0.15, thickness: int = 1) -> Image.Image:
    """A pencil-like line map without a learned model: the gradient strength of the lightly blurred image,
    normalised to the picture's own strongest edges, weak responses dropped, lines widened by `thickness`."""
    import cv2

    gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    sigma = max(0.6, min(image.size) / 400)  # blur with the picture's scale, so big photos keep clean lines
    gray = cv2.GaussianBlur(gray, (0, 0), sigma)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = np.sqrt(gx * gx + gy * gy)
    strongest = float(np.percentile(magnitude, 99.5))
    if strongest < 1e-3:  # a flat picture has no lines at all
        return Image.new("RGB", image.size, 0)
    lines = np.clip(magnitude / strongest, 0.0, 1.0)
    lines = np.where(lines >= threshold, lines ** 0.6, 0.0)
    if thickness > 1:
        lines = cv2.dilate(lines, np.ones((thickness, thickness), np.uint8))
    return Image.fromarray((lines * 255).round().astype(np.uint8)).convert("RGB")


ANNOTATORS_REPO = "lllyasviel/Annotators"
# Every file controlnet-aux 0.0.10's from_pretrained opens for the method (OpenPose: body, hands and face).
ANNOTATOR_FILES = {"pidinet": ("table5_pidinet.pth",), "hed": ("ControlNetHED.pth",),
                   "openpose": ("body_pose_model.pth", "hand_pose_model.pth", "facenet.pth")}


def annotator_folder(method: str) -> str | None:
    """The local folder holding all of controlnet-aux's weights for `method` (from the Hugging Face cache), or
    None. Passing a folder keeps controlnet-aux from downloading: its from_pretrained has no offline switch."""
    from huggingface_hub import try_to_load_from_cache

    cached = [try_to_load_from_cache(ANNOTATORS_REPO, name) for name in ANNOTATOR_FILES[method]]
    if not all(isinstance(path, str) for path in cached):
        return None
    folders = {str(Path(path).parent) for path in cached}
    return folders.pop() if len(folders) == 1 else None  # one snapshot holds them all


def learned_sketch(image: Image.Image, method: str) -> Image.Image | None:
    """PidiNet or HED lines via controlnet-aux, or None when it cannot be imported or its weights are absent."""
    try:
        if method == "pidinet":
            from controlnet_aux import PidiNetDetector as Detector
        else:
            from controlnet_aux import HEDdetector as Detector
    except Exception:  # noqa: BLE001 - without torchvision the package fails with RuntimeError, not ImportError
        return None
    folder = annotator_folder(method)
    if folder is None:
        return None
    detector = Detector.from_pretrained(folder)
    result = detector(image, detect_resolution=min(image.size), image_resolution=min(image.size))
    return result.convert("RGB").resize(image.size, Image.LANCZOS)


def stroke_polarity(image: Image.Image) -> str:
    """'dark-on-light' when the picture is mostly light (a drawing on paper), else 'light-on-dark'."""
    gray = np.asarray(image.convert("L"))
    return "dark-on-light" if float(np.median(gray)) > 127 else "light-on-dark"


def drawing_to_map(image: Image.Image, polarity: str = "auto") -> Image.Image:
    """A line drawing in the adapters' convention, white strokes on black. Sketchpad drawings (dark strokes
    on white paper) are inverted; `polarity` 'keep' or 'invert' overrides the automatic reading."""
    gray = image.convert("L")
    invert = polarity == "invert" or (polarity == "auto" and stroke_polarity(gray) == "dark-on-light")
    if invert:
        gray = Image.fromarray(255 - np.asarray(gray))
    return gray.convert("RGB")


def color_grid(image: Image.Image, cell: int = 64) -> Image.Image:
    """The colour adapter's spatial palette: the picture averaged over cells of `cell` pixels."""
    small = image.resize((max(1, image.width // cell), max(1, image.height // cell)), Image.BICUBIC)
    return small.resize(image.size, Image.NEAREST)

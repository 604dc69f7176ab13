"""Depth maps from photos with transformers' depth-estimation models (DPT / MiDaS, Depth Anything), offline.

A model is used only when its files are already on disk: a folder given by the user, the folder named by
$STUDIO_DEPTH_MODEL, a `depth-estimation` folder under the models folder, or a known model in the Hugging
Face cache. Otherwise the user supplies a depth map. All of them load through `load_estimator(folder)`.
"""
from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from ..requests import InvalidRequest, shown

# Known depth estimators, best first, looked for in the Hugging Face cache (never downloaded here).
KNOWN_DEPTH_MODELS = (
    "Intel/dpt-hybrid-midas",
    "depth-anything/Depth-Anything-V2-Small-hf",
    "LiheYoung/depth-anything-small-hf",
    "Intel/dpt-large",
)
ENV_VARIABLE = "STUDIO_DEPTH_MODEL"
_REPO_ID = re.compile(r"[\w.-]{1,96}/[\w.-]{1,96}")  # what the hub cache is asked about: "Intel/dpt-large"
FOLDER_NAME = "depth-estimation"


def _is_model_folder(folder: Path) -> bool:
    weights = [folder / "model.safetensors", folder / "pytorch_model.bin", *folder.glob("model-*.safetensors")]
    return (folder / "config.json").is_file() and any(path.is_file() for path in weights)


def _cached_snapshot(repo_id: str, cache_dir: str | Path | None = None) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    try:
        config = try_to_load_from_cache(repo_id, "config.json", cache_dir=cache_dir)
    except ValueError:  # not a valid repository id ("../x")
        return None
    if not isinstance(config, str):
        return None
    folder = Path(config).parent
    return folder if _is_model_folder(folder) else None


def _named_folder(model: str, confine) -> Path | None:
    """The folder `model` names, if there is one (within the models folder when `confine` says so)."""
    try:
        folder = confine(model) if confine is not None else Path(model).expanduser()
        return folder if folder is not None and folder.is_dir() else None
    except (OSError, ValueError, RuntimeError):  # a name too long, a NUL byte, ~nobody
        return None


def find_depth_model(model: str | None = None, models_dir: str | Path | None = None,
                     cache_dir: str | Path | None = None, confine=None) -> Path | None:
    """The folder of the depth estimator to use: `model` (a folder or a cached hub id) when given,
    else the first one present on disk. None when there is none. `confine(text)` -> the resolved path when
    it may be opened, else None: the web studio opens folders inside its models folder only."""
    if model:
        if not isinstance(model, str):
            raise InvalidRequest("adapters", f"the depth model must be a folder or a hub id, got {type(model).__name__}")
        folder = _named_folder(model, confine)
        if folder is not None:
            return folder if _is_model_folder(folder) else None
        return _cached_snapshot(model, cache_dir) if _REPO_ID.fullmatch(model) else None
    candidates = []
    if os.environ.get(ENV_VARIABLE):
        candidates.append(Path(os.environ[ENV_VARIABLE]).expanduser())
    if models_dir is not None:
        candidates.append(Path(models_dir) / FOLDER_NAME)
    for folder in candidates:
        if folder.is_dir() and _is_model_folder(folder):
            return folder
    for repo_id in KNOWN_DEPTH_MODELS:
        snapshot = _cached_snapshot(repo_id, cache_dir)
        if snapshot is not None:
            return snapshot
    return None


def load_estimator(folder: str | Path):
    """A transformers depth-estimation pipeline on CPU from a local folder (the same for real and tiny models)."""
    from transformers import pipeline

    from pipelines.module_building import MODULE_BUILDING

    with MODULE_BUILDING:
        return pipeline("depth-estimation", model=str(folder), device="cpu")


def depth_to_image(predicted: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """Relative inverse depth (larger = nearer) to an 8-bit map, bright = near, stretched to the full range."""
    values = np.nan_to_num(np.asarray(predicted, dtype=np.float32))
    low, high = float(values.min()), float(values.max())
    scaled = (values - low) / (high - low) if high - low > 1e-8 else np.zeros_like(values)
    image = Image.fromarray((scaled * 255).round().astype(np.uint8))
    if image.size != size:
        image = image.resize(size, Image.BICUBIC)
    return image.convert("RGB")


class DepthEstimators:
    """Loaded depth estimators keyed by folder, so each loads once. Owned by whoever serves requests
    (the registry, the UI); a fresh instance per call also works, only slower."""

    def __init__(self, models_dir: str | Path | None = None, cache_dir: str | Path | None = None, confine=None):
        self.models_dir = models_dir
        self.cache_dir = cache_dir  # the Hugging Face hub cache; None: the default one
        self.confine = confine  # see find_depth_model
        self._loaded: dict[str, object] = {}
        self._lock = threading.Lock()

    def estimator(self, model: str | None = None):
        folder = find_depth_model(model, self.models_dir, self.cache_dir, confine=self.confine)
        if folder is None:
            wanted = f"the depth-estimation model {shown(model)} is not on disk" if model else \
                "no depth-estimation model is on disk"
            if model and self.confine is not None:
                wanted += " (a folder must be inside the models folder here)"
            raise InvalidRequest("adapters", f"{wanted}. Upload a depth map and turn preprocessing off, or "
                                             f"download a depth model (hf download {KNOWN_DEPTH_MODELS[0]}), "
                                             f"or set ${ENV_VARIABLE} to a local model folder")
        key = str(folder.resolve())
        with self._lock:
            if key not in self._loaded:
                self._loaded[key] = load_estimator(folder)
            return self._loaded[key]

    def estimate(self, image: Image.Image, model: str | None = None) -> Image.Image:
        """Depth map of an RGB image at its own size: RGB, bright = near."""
        import torch

        estimator = self.estimator(model)
        with torch.inference_mode():
            output = estimator(image.convert("RGB"))
        predicted = output["predicted_depth"]
        if hasattr(predicted, "detach"):
            predicted = predicted.detach().float().cpu().numpy()
        return depth_to_image(np.squeeze(predicted), image.size)

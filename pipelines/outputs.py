"""Saving results: outputs/<YYYY-MM-DD>/<NNNNN>-<seed>.png, written atomically, with metadata.

Condition maps fed to adapters are saved beside the image as <NNNNN>-<seed>.cond<k>.png and named in
its metadata. A failed write leaves nothing behind: each file is written to a temporary name in the
same folder and moved into place with os.replace.
"""
from __future__ import annotations

import datetime
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Callable

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from pipelines.metadata import png_info
from pipelines.requests import GenerationRequest

NAME_RE = re.compile(r"^(\d{5,})-")


def write_png_atomic(image: Image.Image, path: Path, pnginfo: PngInfo | None = None) -> Path:
    """Write `image` to `path` so that `path` either holds the whole PNG or does not exist."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as f:
            image.save(f, format="PNG", pnginfo=pnginfo)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp_name, path)
    except BaseException:
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        raise
    return path


class OutputWriter:
    """Numbers and writes result images; safe to share between threads of one process."""

    def __init__(self, outputs_dir: str | os.PathLike, today: Callable[[], datetime.date] = datetime.date.today):
        self.root = Path(outputs_dir)
        self._today = today
        self._lock = threading.Lock()

    def folder(self) -> Path:
        return self.root / self._today().strftime("%Y-%m-%d")

    @staticmethod
    def next_number(folder: Path) -> int:
        numbers = [int(m.group(1)) for p in folder.glob("*.png") if (m := NAME_RE.match(p.name))]
        return max(numbers, default=-1) + 1

    def save(self, image: Image.Image, request: GenerationRequest,
             condition_maps: tuple[Image.Image, ...] = ()) -> str:
        """Save one image of a request (`request` carries that image's own seed); returns its path."""
        with self._lock:
            folder = self.folder()
            folder.mkdir(parents=True, exist_ok=True)
            stem = f"{self.next_number(folder):05d}-{request.seed}"
            written: list[Path] = []
            try:
                extra = {}
                for k, condition in enumerate(condition_maps):
                    cond_path = folder / f"{stem}.cond{k}.png"
                    written.append(write_png_atomic(condition.convert("RGB"), cond_path))
                    extra[f"Adapter {k} map"] = cond_path.name
                path = write_png_atomic(image, folder / f"{stem}.png", png_info(request, extra))
            except BaseException:
                for done in written:  # no orphan condition maps without their image
                    done.unlink(missing_ok=True)
                raise
            return str(path)

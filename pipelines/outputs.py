"""Saving results: outputs/<YYYY-MM-DD>/<NNNNN>-<seed>.png, written atomically, with metadata.

Condition maps fed to adapters are saved beside the image as <NNNNN>-<seed>.cond<k>.png and named in
its metadata. A failed write leaves nothing behind: each file is written to a temporary name in the
same folder and then moved into place. New results are published with a hard link, which refuses to
replace an existing file, so two processes saving into one folder (the UI and a CLI run) never take
the same number.
"""
from __future__ import annotations

import datetime
import os
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from pipelines.file_modes import make_publishable
from pipelines.metadata import png_info
from pipelines.requests import GenerationRequest

NAME_RE = re.compile(r"^(\d{5,})-")
MAX_NAME_TRIES = 1000
STALE_TEMP_SECONDS = 600  # a live writer's temporary file exists for milliseconds


def sweep_stale_temporaries(folder: Path, older_than: float = STALE_TEMP_SECONDS) -> None:
    """Delete the temporary files (`.NAME.xxxx.tmp`) of writers killed mid-write; they never held a result."""
    now = time.time()
    for path in folder.glob(".*.tmp"):
        try:
            if now - path.stat().st_mtime > older_than:
                path.unlink()
        except FileNotFoundError:  # another process swept it first
            pass


def _publish(temp: str, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(temp, path)
        return
    try:
        os.link(temp, path)  # atomic, and fails with FileExistsError instead of replacing
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: the in-process lock still orders our writes
        if path.exists():
            raise FileExistsError(path) from None
        os.replace(temp, path)
        return
    os.unlink(temp)


def write_png_atomic(image: Image.Image, path: Path, pnginfo: PngInfo | None = None, *,
                     overwrite: bool = True) -> Path:
    """Write `image` to `path` so that `path` either holds the whole PNG or is untouched.

    With overwrite=False an existing `path` raises FileExistsError and is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as f:
            image.save(f, format="PNG", pnginfo=pnginfo)
            f.flush()
            os.fsync(f.fileno())
        make_publishable(temp_name)
        _publish(temp_name, path, overwrite)
    except BaseException:
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        raise
    return path


class OutputWriter:
    """Numbers and writes result images; safe to share between threads, and between processes."""

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
            sweep_stale_temporaries(folder)
            number = self.next_number(folder)
            for _ in range(MAX_NAME_TRIES):
                try:
                    return str(self._save_as(folder, f"{number:05d}-{request.seed}", image, request, condition_maps))
                except FileExistsError:  # another process took this number meanwhile
                    number = max(number + 1, self.next_number(folder))
            raise FileExistsError(f"could not find a free file name in {folder}")

    @staticmethod
    def _save_as(folder: Path, stem: str, image, request, condition_maps) -> Path:
        written: list[Path] = []
        try:
            extra = {}
            for k, condition in enumerate(condition_maps):
                cond_path = folder / f"{stem}.cond{k}.png"
                written.append(write_png_atomic(condition.convert("RGB"), cond_path, overwrite=False))
                extra[f"Adapter {k} map"] = cond_path.name
            return write_png_atomic(image, folder / f"{stem}.png", png_info(request, extra), overwrite=False)
        except BaseException:
            for done in written:  # no orphan condition maps without their image
                done.unlink(missing_ok=True)
            raise

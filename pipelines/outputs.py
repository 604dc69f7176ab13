"""Saving results: outputs/<YYYY-MM-DD>/<NNNNN>-<seed>.png, written atomically, with metadata; a signed-in
user's go to outputs/users/<name>/<YYYY-MM-DD>/ (see `user_folder`).

Condition maps fed to adapters are saved beside the image as <NNNNN>-<seed>.cond<k>.png and named in
its metadata. A failed write leaves nothing behind: each file is written to a temporary name in the
same folder and then moved into place. New results are published with a hard link, which refuses to
replace an existing file, so two processes saving into one folder (the UI and a CLI run) never take
the same number.
"""
from __future__ import annotations

import datetime
import hashlib
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
USERS_DIR = "users"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def user_folder(user: str) -> str:
    """A folder name for a user name: letters, digits, '_' and '-' only, never empty, '.' or '..'.

    A name that had to be changed gets a short hash of the original, so two names never share a folder
    ("a b" and "a_b" both become "a_b", but with different hashes).
    """
    if not isinstance(user, str) or not user:
        raise ValueError("user: a non-empty user name is required")
    safe = _UNSAFE.sub("_", user)[:48] or "_"
    if safe != user:
        safe = f"{safe}-{hashlib.sha256(user.encode('utf-8')).hexdigest()[:8]}"
    return safe


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

    def user_root(self, user: str | None = None) -> Path:
        """Where `user`'s images go (every date folder below it); the outputs folder itself without a user."""
        return self.root if user is None else self.root / USERS_DIR / user_folder(user)

    def folder(self, user: str | None = None) -> Path:
        return self.user_root(user) / self._today().strftime("%Y-%m-%d")

    @staticmethod
    def next_number(folder: Path) -> int:
        numbers = [int(m.group(1)) for p in folder.glob("*.png") if (m := NAME_RE.match(p.name))]
        return max(numbers, default=-1) + 1

    def save(self, image: Image.Image, request: GenerationRequest,
             condition_maps: tuple[Image.Image, ...] = (), extra: dict | None = None,
             user: str | None = None) -> str:
        """Save one image of a request (`request` carries that image's own seed); returns its path.

        `extra`: more A1111 fields for its metadata, e.g. {"Model hash": ...}; `user`: whose folder (see
        `folder`).
        """
        with self._lock:
            folder = self.folder(user)
            folder.mkdir(parents=True, exist_ok=True)
            sweep_stale_temporaries(folder)
            number = self.next_number(folder)
            for _ in range(MAX_NAME_TRIES):
                try:
                    return str(self._save_as(folder, f"{number:05d}-{request.seed}", image, request, condition_maps,
                                             extra))
                except FileExistsError:  # another process took this number meanwhile
                    number = max(number + 1, self.next_number(folder))
            raise FileExistsError(f"could not find a free file name in {folder}")

    @staticmethod
    def _save_as(folder: Path, stem: str, image, request, condition_maps, extra=None) -> Path:
        written: list[Path] = []
        try:
            extra = dict(extra or {})
            for k, condition in enumerate(condition_maps):
                cond_path = folder / f"{stem}.cond{k}.png"
                written.append(write_png_atomic(condition.convert("RGB"), cond_path, overwrite=False))
                extra[f"Adapter {k} map"] = cond_path.name
            return write_png_atomic(image, folder / f"{stem}.png", png_info(request, extra), overwrite=False)
        except BaseException:
            for done in written:  # no orphan condition maps without their image
                done.unlink(missing_ok=True)
            raise

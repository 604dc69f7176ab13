"""Every image made, read back from the outputs folder: newest first, a page at a time, with its settings.

The layout is pipelines/outputs.py's: `<outputs>/<YYYY-MM-DD>/<NNNNN>-<seed>.png`, and for a signed-in user
`<outputs>/users/<name>/<YYYY-MM-DD>/...`. A user's history is their own folder only; without a user it is
the whole outputs folder (one user's studio, or an operator's shared gallery). Condition maps saved beside
an image (`*.condK.png`) are not listed.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.metadata import PARAMETERS_KEY, png_text_chunks, read_png_info
from pipelines.outputs import NAME_RE, USERS_DIR, OutputWriter

DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
PAGE_SIZE = 24


@dataclass(frozen=True)
class HistoryEntry:
    path: str
    date: str  # the date folder, YYYY-MM-DD
    settings: dict[str, Any] = field(default_factory=dict)  # GenerationRequest field names (read_png_info)
    parameters: str = ""  # the A1111 `parameters` text as stored

    @property
    def caption(self) -> str:
        seed = self.settings.get("seed")
        return f"seed {seed} · {self.date}" if seed is not None else self.date


@dataclass(frozen=True)
class HistoryPage:
    entries: tuple[HistoryEntry, ...]
    page: int  # 1-based
    pages: int  # at least 1, even when there is nothing
    total: int


def _images_under(root: Path) -> list[tuple[tuple, Path]]:
    """(sort key, path) of the result images in the date folders directly below `root`."""
    found = []
    if not root.is_dir():
        return found
    for folder in root.iterdir():
        if not folder.is_dir() or not DATE_RE.match(folder.name):
            continue
        for path in folder.glob("*.png"):
            match = NAME_RE.match(path.name)
            if match is None or ".cond" in path.name:
                continue
            try:
                mtime = path.stat().st_mtime_ns
            except OSError:  # removed meanwhile
                continue
            found.append(((folder.name, mtime, int(match.group(1)), str(path)), path))
    return found


def history_files(outputs: OutputWriter, user: str | None = None) -> list[Path]:
    """Every result image of `user` (None: everyone's, the whole outputs folder), newest first."""
    roots = [outputs.user_root(user)]
    if user is None:
        users = outputs.root / USERS_DIR
        roots += [folder for folder in users.iterdir() if folder.is_dir()] if users.is_dir() else []
    found = [item for root in roots for item in _images_under(root)]
    return [path for _, path in sorted(found, key=lambda item: item[0], reverse=True)]


def read_entry(path: Path) -> HistoryEntry:
    """One image with what it says about itself; a file whose metadata does not parse is still listed."""
    try:
        chunks = png_text_chunks(path)
        settings = read_png_info(path)
    except (OSError, ValueError):
        chunks, settings = {}, {}
    return HistoryEntry(str(path), path.parent.name, settings, chunks.get(PARAMETERS_KEY, ""))


def history_page(outputs: OutputWriter, user: str | None = None, page: int = 1,
                 per_page: int = PAGE_SIZE) -> HistoryPage:
    """Page `page` (1-based; past the end gives the last page) of `user`'s images, newest first."""
    if per_page < 1:
        raise ValueError(f"per_page: must be at least 1, got {per_page}")
    files = history_files(outputs, user)
    pages = max(1, math.ceil(len(files) / per_page))
    page = min(max(1, int(page)), pages)
    chosen = files[(page - 1) * per_page: page * per_page]
    return HistoryPage(tuple(read_entry(path) for path in chosen), page, pages, len(files))

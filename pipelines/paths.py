"""Paths that users type where a model, a LoRA or a depth model is asked for.

Two policies, chosen by whoever builds the registry:
- "any": a typed path may point anywhere (the command line and the Python API: the operator's own machine).
- "models-dir": a typed path must resolve, after following symbolic links, inside the models folder (the web
  studio: strangers type these). Keys from the catalog are unaffected.

Typed text is hostile here: a name too long for the file system, a NUL byte or `~nobody` is "no such path",
never an OSError. Under "models-dir" a path outside is refused whether or not it exists, so the answer does
not tell a stranger which files the machine has.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from pipelines.requests import InvalidRequest, shown

PATH_POLICIES = ("any", "models-dir")
_PATH_SYNTAX = re.compile(r"[/\\]|^[~.]")  # what makes a typed name a path rather than a key


def check_policy(policy: str) -> str:
    if policy not in PATH_POLICIES:
        raise ValueError(f"allow_paths: must be one of {', '.join(PATH_POLICIES)}, got {policy!r}")
    return policy


def _existing(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # too long, a NUL byte, a broken mount: nothing usable there
        return False


def _resolved(text: str) -> Path | None:
    try:
        return Path(text).expanduser().resolve()
    except (OSError, ValueError, RuntimeError):  # RuntimeError: a symlink loop, or ~user that does not exist
        return None


def inside(text: str, root: str | Path | None) -> Path | None:
    """The resolved path of `text` when it lies in `root` (links followed), else None."""
    if root is None:
        return None
    path, base = _resolved(text), _resolved(str(root))
    if path is None or base is None or not path.is_relative_to(base):
        return None
    return path


def typed_path(text, field: str, *, policy: str, models_dir: str | Path | None) -> Path | None:
    """The existing file or folder `text` names, or None (then it is a key, or unknown).

    Under "models-dir", text written as a path (with a separator, or starting with "~" or ".") that resolves
    outside the models folder raises InvalidRequest naming `field`.
    """
    text = os.fspath(text) if isinstance(text, os.PathLike) else str(text)
    if not text or "\x00" in text:
        return None
    if policy == "models-dir":
        path = inside(text, models_dir)
        if path is None:
            if _PATH_SYNTAX.search(text):
                raise InvalidRequest(field, f"{shown(text)} is not inside the models folder; this studio opens "
                                            "only the models listed, and paths inside its models folder")
            return None
        return path if _existing(path) else None
    path = Path(text)
    try:
        path = path.expanduser()
    except RuntimeError:
        return None
    return path if _existing(path) else None

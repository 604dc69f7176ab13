"""Permissions for files published with mkstemp + rename.

mkstemp creates its file 0600 (private to the writer), which is right while it is half-written but wrong
for a published output: images, exports and sidecars get the mode a plain open() would give them.
"""
from __future__ import annotations

import os


def current_umask() -> int:
    try:  # Linux reports it without changing it (os.umask can only read by setting, racing other threads)
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def make_publishable(path: str | os.PathLike) -> None:
    """Give a temporary file about to be renamed into place the mode open() would: 0o666 & ~umask."""
    os.chmod(path, 0o666 & ~current_umask())

"""A1111's "Model hash": the first 10 hex digits of the checkpoint file's SHA-256 (what Civitai calls AutoV2).

Hashing a multi-GB checkpoint takes seconds, so it is done on first use and cached per file (path, size and
modification time), never at import. A diffusers folder has no single file that A1111 or Civitai would hash,
so no hash is written for it (a made-up one would only mislead a lookup).
"""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

SHORT_HASH_DIGITS = 10
BLOCK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


class FileHashes:
    """SHA-256 of files, remembered per (path, size, mtime); safe to share between threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self._known: dict[tuple[str, int, int], str] = {}

    def sha256(self, path: str | os.PathLike) -> str:
        stat = os.stat(path)
        key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if key in self._known:
                return self._known[key]
        digest = sha256_file(path)  # outside the lock: other files need not wait
        with self._lock:
            self._known[key] = digest
        return digest

    def short(self, path: str | os.PathLike) -> str:
        return self.sha256(path)[:SHORT_HASH_DIGITS]

    def model_fields(self, spec) -> dict[str, str]:
        """{"Model hash": ...} for a single-file checkpoint (a catalog ModelSpec); {} for anything else."""
        if getattr(spec, "format", None) != "single_file" or getattr(spec, "unet_path", None):
            return {}
        path = Path(spec.source)
        return {"Model hash": self.short(path)} if path.is_file() else {}

"""The sidecar a trained (or exported) model carries: `studio.json` inside a folder, `<name>.studio.json`
beside a file. Keys: "trigger_words" (the instance prompt), "base" (model key or path),
"family", "type" ("lora" for adapters), "prediction_type", plus free-form training facts.
Written atomically, read forgivingly (a broken sidecar is the same as none).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from pipelines.file_modes import make_publishable

SIDECAR_NAME = "studio.json"
SIDECAR_SUFFIX = ".studio.json"


def sidecar_path(path: str | Path) -> Path:
    path = Path(path)
    return path / SIDECAR_NAME if path.is_dir() else path.with_name(path.stem + SIDECAR_SUFFIX)


def read_sidecar(path: str | Path) -> dict:
    try:
        data = json.loads(sidecar_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def atomic_write_text(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            f.write(text)
        make_publishable(temporary)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_sidecar(path: str | Path, data: dict) -> Path:
    target = sidecar_path(path)
    atomic_write_text(target, json.dumps(data, indent=2, sort_keys=True) + "\n")
    return target


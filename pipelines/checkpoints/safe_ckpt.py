"""`.ckpt` files are Python pickles: opening one with a plain unpickler can run any code it names.

They load only when the operator opts in, and then with torch's `weights_only` unpickler, which builds
tensors and plain containers and refuses every other global, so a pickle that would run code never runs.
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
OPT_IN_HINT = "pass --allow-ckpt on the command line, or allow_ckpt=True from Python"


class CheckpointRefused(ValueError):
    """A pickled checkpoint was not opened: no opt-in, or it holds more than tensors."""


def is_pickle_checkpoint(path: str | Path) -> bool:
    return Path(path).suffix.lower() in PICKLE_SUFFIXES


def refuse_without_opt_in(path: str | Path, allow_ckpt: bool) -> None:
    if not allow_ckpt:
        raise CheckpointRefused(
            f"{Path(path).name}: refusing to open a pickled checkpoint ({Path(path).suffix}), because unpickling "
            f"can run arbitrary code. Convert it to .safetensors, or, if you trust its source, {OPT_IN_HINT}; "
            "it is then read with torch's weights_only loader, which accepts tensors only.")


def load_pickled_state_dict(path: str | Path, *, allow_ckpt: bool) -> dict:
    """The tensors of a .ckpt/.pt file, read with `torch.load(weights_only=True)` after the opt-in check."""
    import torch

    path = Path(path)
    refuse_without_opt_in(path, allow_ckpt)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    mmap = zipfile.is_zipfile(path)  # memory-mapping works for the zip format only
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        reason = _unpickling_reason(error)
        raise CheckpointRefused(
            f"{path.name}: refused: it holds more than tensors, so it was not unpickled ({reason}). "
            "Ask its author for a .safetensors file.") from None
    return tensors_of(data, path.name)


def _unpickling_reason(error: Exception) -> str:
    """The line of torch's message that names what the pickle asked for (e.g. "GLOBAL posix.system")."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    named = [line for line in lines if "GLOBAL" in line or "Unsupported" in line]
    return (named or lines or [type(error).__name__])[0]


def tensors_of(data, name: str) -> dict:
    """The flat tensor dict inside a loaded checkpoint (some nest it under "state_dict")."""
    import torch

    while isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise ValueError(f"{name}: not a state dict (found {type(data).__name__})")
    tensors = {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not tensors:
        raise ValueError(f"{name}: holds no tensors")
    return tensors

"""Where models run: CUDA (float16, bfloat16 on request), Apple MPS, or CPU (bfloat16 where the processor
has native bfloat16, float32 elsewhere: pipelines/fast/paths.py says why).

Chosen when a registry is made (never at import): an explicit argument wins, then the environment
variables STUDIO_DEVICE ("cuda", "cuda:1", "mps", "cpu") and STUDIO_DTYPE ("float16", "bfloat16",
"float32"; short forms fp16/bf16/fp32), then whatever accelerator is present.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
          "half": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class DeviceChoice:
    device: torch.device
    dtype: torch.dtype
    dtype_reason: str = ""  # why this dtype: asked for, or what the machine does well
    explicit: bool = False  # asked for (argument or STUDIO_DTYPE) rather than chosen for the machine

    def describe(self) -> str:
        return f"{self.device} ({str(self.dtype).removeprefix('torch.')})"


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def parse_device(name: str | torch.device) -> torch.device:
    text = str(name).strip().lower()
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ValueError(f"device: unknown device {name!r}; use cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device: {name!r} was asked for but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device: {name!r} does not exist; this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps":
        if not _mps_available():
            raise ValueError(f"device: {name!r} was asked for but Apple MPS is not available")
    elif device.type != "cpu":
        raise ValueError(f"device: unsupported device {name!r}; use cpu, cuda, cuda:N or mps")
    return device


def parse_dtype(name: str | torch.dtype) -> torch.dtype:
    if isinstance(name, torch.dtype):
        if name not in DTYPES.values():
            raise ValueError(f"dtype: unsupported {name}; use one of {', '.join(DTYPES)}")
        return name
    key = str(name).strip().lower().removeprefix("torch.")
    if key not in DTYPES:
        raise ValueError(f"dtype: unknown dtype {name!r}; use one of {', '.join(DTYPES)}")
    return DTYPES[key]


def default_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def default_dtype(device: torch.device, cpu=None) -> torch.dtype:
    """Half precision on GPUs; on a CPU, bfloat16 when it is native there, else float32 (probed on call)."""
    from pipelines.fast.paths import default_dtype as fast_default

    return fast_default(device, cpu)[0]


def choose_device(device: str | torch.device | None = None, dtype: str | torch.dtype | None = None,
                  environ: dict | None = None, cpu=None) -> DeviceChoice:
    env = os.environ if environ is None else environ
    device_name = device if device is not None else (env.get("STUDIO_DEVICE") or None)
    chosen = parse_device(device_name) if device_name is not None else default_device()
    dtype_name = dtype if dtype is not None else (env.get("STUDIO_DTYPE") or None)
    if dtype_name is not None:
        chosen_dtype, reason = parse_dtype(dtype_name), "asked for"
    else:
        from pipelines.fast.paths import default_dtype as fast_default

        chosen_dtype, reason = fast_default(chosen, cpu)
    if chosen_dtype == torch.bfloat16 and chosen.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("dtype: bfloat16 was asked for but this GPU does not support it; use float16")
    return DeviceChoice(chosen, chosen_dtype, reason, explicit=dtype_name is not None)

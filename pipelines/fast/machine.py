"""What this processor does well, read from the operating system when asked (never at import).

Native bfloat16 arithmetic (x86 AVX512-BF16 or AMX-BF16; Arm's BF16 extension) makes a bfloat16 UNet about
twice as fast as float32 with oneDNN; on a processor without it (AVX2 only) bfloat16 is emulated and may be
slower, so it is never assumed.
"""
from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 (two kinds), then Arm's "Features: ... bf16"


@dataclass(frozen=True)
class CpuInfo:
    model: str
    flags: frozenset[str]
    usable_cpus: int  # the CPUs this process may run on (a container's share, not the host's count)

    @property
    def native_bf16(self) -> bool:
        return any(flag in self.flags for flag in BF16_FLAGS)

    @property
    def amx(self) -> bool:
        return "amx_bf16" in self.flags

    def describe(self) -> str:
        kind = "AMX-BF16" if self.amx else ("native bfloat16" if self.native_bf16 else "no native bfloat16")
        return f"{self.model or platform.processor() or 'CPU'}, {self.usable_cpus} CPUs, {kind}"


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def parse_cpuinfo(text: str) -> tuple[str, frozenset[str]]:
    """(model name, flags) from /proc/cpuinfo's text; x86 writes `flags`, Arm `Features`."""
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return model, frozenset(flags)


def cpu_info(cpuinfo_path: str | Path = "/proc/cpuinfo") -> CpuInfo:
    try:
        model, flags = parse_cpuinfo(Path(cpuinfo_path).read_text(errors="replace"))
    except OSError:  # macOS, Windows: nothing to read, so nothing is assumed
        model, flags = platform.processor(), frozenset()
    return CpuInfo(model, flags, _usable_cpus())

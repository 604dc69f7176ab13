"""The settings a device runs with by default, and why. Chosen when a registry is made, never at import.

Measured on this repository's CPU (AMD EPYC Zen 4, AVX512-BF16, 2 cores), one SD 1.5 UNet step at 512x512
with CFG (batch 2): float32 13.1 s, bfloat16 12.0 s, bfloat16 + channels_last 6.7 s (oneDNN's bfloat16
convolutions want NHWC), while float32 + channels_last was slower than plain float32. So:

- CPU with native bfloat16: bfloat16 and channels_last for Stable Diffusion-sized models. Without it:
  float32, contiguous. The bundled shapes model (128x128, a 16x16 latent) stays in float32: per-operation
  overhead rules there, and one of its UNet steps took 20-30 ms in float32, 27-35 ms in bfloat16 and
  38-62 ms in bfloat16 + channels_last (one thread, this CPU).
- CUDA: float16 (bfloat16 on request), channels_last, fused QKV projections; PyTorch SDPA attention is
  diffusers' default already. Apple MPS: float16.
- Threads: never more than the CPUs this process may run on (a container often shows the host's cores).
- UNet batches: on CUDA the images of one request's batch (AUTOMATIC1111's batch size) go through the UNet
  together, up to CUDA_UNET_BATCH at once (pipelines/sampling/batched.py); on a CPU one at a time, so an
  image is bit-for-bit the same alone or in a batch (a CPU is busy with one image's kernels already).
- torch.compile: only when asked (`compile=True`): compiling a UNet takes minutes on a CPU, and the
  first request at each new size waits for it (pipelines/fast/compiled.py announces it).

An explicit dtype (`--dtype`, STUDIO_DTYPE) always wins; the other settings follow the dtype in use.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from pipelines.fast.machine import CpuInfo, cpu_info


@dataclass(frozen=True)
class FastPaths:
    dtype: torch.dtype
    channels_last: bool = False
    fuse_qkv: bool = False
    compile: bool = False
    threads: int | None = None  # set torch's intra-op threads to this; None leaves them alone
    unet_batch: int = 1  # at most this many images of a request through the UNet at once
    notes: tuple[str, ...] = field(default=())  # why each choice was made, for logs and the UI header

    def describe(self) -> str:
        parts = [str(self.dtype).removeprefix("torch.")]
        parts += [name for name, on in (("channels_last", self.channels_last), ("fused QKV", self.fuse_qkv),
                                        ("torch.compile", self.compile)) if on]
        if self.threads:
            parts.append(f"{self.threads} threads")
        if self.unet_batch > 1:
            parts.append(f"UNet batches of up to {self.unet_batch} images")
        return ", ".join(parts)


CUDA_UNET_BATCH = 4  # SDXL at 1024x1024: four images (eight rows with guidance) fit well under 24 GiB
SMALL_FAMILIES = ("shapes",)  # models too small for bfloat16 to pay on a CPU (measured above)


def default_dtype(device: torch.device, cpu: CpuInfo | None = None,
                  family: str | None = None) -> tuple[torch.dtype, str]:
    if device.type in ("cuda", "mps"):
        return torch.float16, "half precision is the norm on GPUs"
    cpu = cpu if cpu is not None else cpu_info()
    if cpu.native_bf16 and family in SMALL_FAMILIES:
        return torch.float32, (f"float32: the {family} model is too small for bfloat16 to pay on a CPU "
                               f"(bfloat16 is used for Stable Diffusion-sized models here)")
    if cpu.native_bf16:
        return torch.bfloat16, f"bfloat16: this CPU has native bfloat16 ({cpu.describe()})"
    return torch.float32, f"float32: this CPU has no native bfloat16 ({cpu.describe()}), so it would be emulated"


def choose(device: torch.device, dtype: torch.dtype | None = None, *, dtype_reason: str = "",
           family: str | None = None, compile: bool = False, cpu: CpuInfo | None = None,
           unet_batch: int | None = None) -> FastPaths:
    """The fast paths for `device` and a model `family` (None: a Stable Diffusion-sized model); `dtype` and
    `unet_batch` are the operator's choice, None for this device's default."""
    notes = []
    if device.type == "cpu":
        cpu = cpu if cpu is not None else cpu_info()
    if dtype is None:
        dtype, dtype_reason = default_dtype(device, cpu, family)
    notes.append(dtype_reason if ":" in dtype_reason else
                 f"{str(dtype).removeprefix('torch.')}: {dtype_reason or 'asked for'}")
    if device.type == "cuda":
        channels_last, fuse_qkv = True, True
    elif device.type == "cpu":
        channels_last, fuse_qkv = dtype == torch.bfloat16 and cpu.native_bf16, False
        if channels_last:
            notes.append("channels_last: oneDNN's bfloat16 convolutions are ~1.8x faster in NHWC")
    else:
        channels_last, fuse_qkv = False, False
    threads = None
    if device.type == "cpu" and torch.get_num_threads() > cpu.usable_cpus:
        threads = cpu.usable_cpus
        notes.append(f"{threads} threads: only {threads} CPUs are usable by this process")
    if unet_batch is None:
        unet_batch = CUDA_UNET_BATCH if device.type == "cuda" else 1
        if unet_batch > 1:
            notes.append(f"UNet batches: up to {unet_batch} images of a request's batch at once")
    if compile:
        notes.append("torch.compile: once per image size; the first request at each size waits for it")
    return FastPaths(dtype, channels_last, fuse_qkv, compile, threads, unet_batch, tuple(notes))


def apply_threads(paths: FastPaths) -> None:
    """Process-wide, so done once by whoever owns the process (the registry on creation)."""
    if paths.threads:
        torch.set_num_threads(paths.threads)


def apply(components: dict, paths: FastPaths) -> None:
    """Put `paths` on freshly loaded components (before any request can see them)."""
    for name in ("unet", "vae"):
        module = components.get(name)
        if paths.channels_last and isinstance(module, torch.nn.Module):
            module.to(memory_format=torch.channels_last)
    unet = components.get("unet")
    if paths.fuse_qkv and unet is not None and hasattr(unet, "fuse_qkv_projections"):
        try:
            unet.fuse_qkv_projections()
        except ValueError:  # added-KV attention (not in SD 1.x/2.x/XL): left unfused
            pass


def is_fused(unet) -> bool:
    return getattr(unet, "original_attn_processors", None) is not None and any(
        "Fused" in type(p).__name__ for p in unet.attn_processors.values())


@contextmanager
def unfused(unet):
    """LoRA layers are injected into to_q/to_k/to_v, which fused attention does not read: unfuse for the
    run (the caller holds the model exclusively) and fuse again after."""
    if unet is None or not is_fused(unet):
        yield
        return
    unet.unfuse_qkv_projections()
    try:
        yield
    finally:
        unet.fuse_qkv_projections()

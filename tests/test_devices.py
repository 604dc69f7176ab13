"""Device and dtype choice: argument, then STUDIO_DEVICE / STUDIO_DTYPE, then the best accelerator."""
from __future__ import annotations

import pytest
import torch

from pipelines import PipelineRegistry
from pipelines.devices import choose_device, parse_dtype
from pipelines.fast.machine import CpuInfo, parse_cpuinfo
from pipelines.fast.paths import choose as choose_paths


ZEN4 = CpuInfo("AMD EPYC 9B14", frozenset({"avx2", "avx512f", "avx512_bf16"}), 2)
AVX2_ONLY = CpuInfo("Intel Core i7-8700", frozenset({"avx2", "fma"}), 12)


def test_cpu_dtype_follows_what_the_processor_does_natively():
    native = choose_device("cpu", environ={}, cpu=ZEN4)
    assert native.device == torch.device("cpu") and native.dtype == torch.bfloat16
    assert "native bfloat16" in native.dtype_reason
    assert choose_device("cpu", environ={}, cpu=AVX2_ONLY).dtype == torch.float32
    assert choose_device("cpu", "float32", environ={}, cpu=ZEN4).dtype == torch.float32  # the operator wins


def test_cpuinfo_flags_are_read_for_x86_and_arm():
    x86 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512f avx512_bf16\n\nprocessor\t: 1\n"
    assert parse_cpuinfo(x86) == ("AMD EPYC", frozenset({"fpu", "avx2", "avx512f", "avx512_bf16"}))
    arm = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\nCPU part\t: 0xd4f\n"
    assert CpuInfo(*parse_cpuinfo(arm), 4).native_bf16
    assert not CpuInfo(*parse_cpuinfo("flags : avx2 avx512f avx512bw"), 4).native_bf16


def test_fast_paths_per_device():
    cpu = torch.device("cpu")
    fast = choose_paths(cpu, torch.bfloat16, cpu=ZEN4)
    assert fast.channels_last and not fast.fuse_qkv and not fast.compile
    assert not choose_paths(cpu, torch.float32, cpu=AVX2_ONLY).channels_last
    assert not choose_paths(cpu, torch.bfloat16, cpu=AVX2_ONLY).channels_last  # emulated bf16: no NHWC gain
    small = choose_paths(cpu, family="shapes", cpu=ZEN4)  # too small for bfloat16 to pay
    assert small.dtype == torch.float32 and not small.channels_last
    assert choose_paths(cpu, family="sd1", cpu=ZEN4).dtype == torch.bfloat16
    assert choose_paths(cpu, torch.bfloat16, family="shapes", cpu=ZEN4).dtype == torch.bfloat16  # asked for
    gpu = choose_paths(torch.device("cuda"), torch.float16)
    assert gpu.channels_last and gpu.fuse_qkv
    crowded = CpuInfo("x", frozenset(), 1)
    assert choose_paths(cpu, torch.float32, cpu=crowded).threads == (1 if torch.get_num_threads() > 1 else None)


def test_environment_variables_are_used(monkeypatch):
    choice = choose_device(environ={"STUDIO_DEVICE": "cpu", "STUDIO_DTYPE": "bf16"})
    assert choice.device.type == "cpu" and choice.dtype == torch.bfloat16
    monkeypatch.setenv("STUDIO_DEVICE", "cpu")
    monkeypatch.setenv("STUDIO_DTYPE", "bfloat16")
    registry = PipelineRegistry(models_dir=None, save_outputs=False)
    assert registry.device.type == "cpu" and registry.dtype == torch.bfloat16
    assert registry.fast_paths_for("shapes").dtype == torch.bfloat16  # the operator's dtype holds for every model


def test_argument_wins_over_environment():
    choice = choose_device("cpu", "float32", environ={"STUDIO_DEVICE": "mps", "STUDIO_DTYPE": "fp16"})
    assert choice.device.type == "cpu" and choice.dtype == torch.float32


def test_cuda_is_preferred_and_half_precision_when_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    choice = choose_device(environ={})
    assert choice.device.type == "cuda" and choice.dtype == torch.float16


def test_cpu_when_no_accelerator(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert choose_device(environ={}).device.type == "cpu"
    with pytest.raises(ValueError, match="CUDA is not available"):
        choose_device("cuda", environ={})
    with pytest.raises(ValueError, match="MPS is not available"):
        choose_device(environ={"STUDIO_DEVICE": "mps"})


@pytest.mark.parametrize("device, dtype, word", [("tpu", None, "device"), ("cpu", "int8", "dtype"),
                                                 ("gpu please", None, "device")])
def test_unknown_names_are_refused(device, dtype, word):
    with pytest.raises(ValueError, match=f"^{word}: "):
        choose_device(device, dtype, environ={})


def test_dtype_names():
    assert parse_dtype("fp16") == parse_dtype("float16") == parse_dtype(torch.float16) == torch.float16
    assert parse_dtype("torch.bfloat16") == torch.bfloat16


def test_importing_pipelines_probes_no_device(monkeypatch):
    import importlib
    import sys

    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: calls.append("probe") or False)
    for name in [m for m in sys.modules if m == "pipelines" or m.startswith("pipelines.")]:
        monkeypatch.delitem(sys.modules, name)
    importlib.import_module("pipelines.registry")
    importlib.import_module("pipelines")
    assert calls == []

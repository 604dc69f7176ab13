"""Device and dtype choice: argument, then STUDIO_DEVICE / STUDIO_DTYPE, then the best accelerator."""
from __future__ import annotations

import pytest
import torch

from pipelines import PipelineRegistry
from pipelines.devices import choose_device, parse_dtype


def test_explicit_cpu_uses_float32():
    choice = choose_device("cpu", environ={})
    assert choice.device == torch.device("cpu") and choice.dtype == torch.float32


def test_environment_variables_are_used(monkeypatch):
    choice = choose_device(environ={"STUDIO_DEVICE": "cpu", "STUDIO_DTYPE": "bf16"})
    assert choice.device.type == "cpu" and choice.dtype == torch.bfloat16
    monkeypatch.setenv("STUDIO_DEVICE", "cpu")
    monkeypatch.setenv("STUDIO_DTYPE", "bfloat16")
    registry = PipelineRegistry(models_dir=None, save_outputs=False)
    assert registry.device.type == "cpu" and registry.dtype == torch.bfloat16


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

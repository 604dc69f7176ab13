"""Published files (output PNGs, condition maps, exported weights, sidecars) get the mode a plain open()
would give them, not mkstemp's private 0600."""
from __future__ import annotations

import os
import stat

import pytest
import torch
from PIL import Image

from pipelines.checkpoints.export import save_safetensors_atomic
from pipelines.dreambooth.sidecar import write_sidecar
from pipelines.outputs import OutputWriter
from pipelines.requests import GenerationRequest


@pytest.fixture
def umask():
    def set_umask(mask: int) -> None:
        os.umask(mask)

    previous = os.umask(0o022)
    yield set_umask
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_outputs_exports_and_sidecars_are_readable_by_others_under_umask_022(tmp_path, umask):
    writer = OutputWriter(tmp_path / "outputs")
    image = Image.new("RGB", (8, 8), "red")
    saved = writer.save(image, GenerationRequest(prompt="a red circle", seed=1), condition_maps=(image,))
    condition_map = saved.replace(".png", ".cond0.png")
    exported = save_safetensors_atomic({"w": torch.zeros(2)}, tmp_path / "model.safetensors")
    sidecar = write_sidecar(exported, {"family": "sd1"})
    for path in (saved, condition_map, exported, sidecar):
        assert mode(path) == 0o644, path


def test_a_stricter_umask_is_respected(tmp_path, umask):
    umask(0o077)
    saved = OutputWriter(tmp_path / "outputs").save(Image.new("RGB", (8, 8)), GenerationRequest(prompt="x", seed=2))
    assert mode(saved) == 0o600

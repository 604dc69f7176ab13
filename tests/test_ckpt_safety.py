"""Pickled checkpoints: refused without the operator's opt-in, read weights-only with it, and a pickle
that would run code never runs either way."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from dreambooth_support import images, load_shapes, pipeline_from

from pipelines.checkpoints.export import original_state_dict
from pipelines.checkpoints.safe_ckpt import CheckpointRefused, load_pickled_state_dict
from pipelines.checkpoints.single_file import detect_family, load_single_file


class WritesAMarker:
    """Unpickling this calls open(marker, "w"): the file appearing would prove code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def shapes():
    return load_shapes()


@pytest.fixture(scope="module")
def honest_ckpt(shapes, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "shapes.ckpt"
    torch.save({"state_dict": original_state_dict(shapes), "global_step": 1000}, path)  # the original repos' shape
    return path


def test_ckpt_is_refused_without_the_opt_in(honest_ckpt):
    with pytest.raises(CheckpointRefused, match="--allow-ckpt"):
        load_single_file(honest_ckpt)
    with pytest.raises(CheckpointRefused, match="arbitrary code"):
        detect_family(honest_ckpt)


def test_ckpt_loads_weights_only_when_allowed(shapes, honest_ckpt):
    assert detect_family(honest_ckpt, allow_ckpt=True) == "shapes"
    loaded = load_single_file(honest_ckpt, allow_ckpt=True)
    assert np.array_equal(images(pipeline_from(loaded), size=64), images(pipeline_from(shapes), size=64))


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-pickle"])
def test_a_pickle_that_would_run_code_never_runs(tmp_path, legacy):
    marker = tmp_path / "code-ran.txt"
    evil = tmp_path / "model.ckpt"
    payload = {"state_dict": {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 4, 3, 3)},
               "callback": WritesAMarker(marker)}
    torch.save(payload, evil, _use_new_zipfile_serialization=not legacy)
    for attempt in (lambda: load_single_file(evil), lambda: detect_family(evil)):
        with pytest.raises(CheckpointRefused, match="allow-ckpt"):
            attempt()
    for attempt in (lambda: load_single_file(evil, allow_ckpt=True), lambda: detect_family(evil, allow_ckpt=True),
                    lambda: load_pickled_state_dict(evil, allow_ckpt=True)):
        with pytest.raises(CheckpointRefused, match="more than tensors"):
            attempt()
    assert not marker.exists()
    torch.load(evil, weights_only=False)  # the control: an ordinary unpickle does run it
    assert marker.exists()

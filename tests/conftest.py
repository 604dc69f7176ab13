"""Shared fixtures: one CPU registry on the bundled shapes model for the whole session, outputs in tmp."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network

import pytest


@pytest.fixture(scope="session")
def session_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("studio")
    (root / "models").mkdir()
    return root


@pytest.fixture(scope="session")
def registry(session_dirs):
    """The bundled model on CPU in float32, saving into a temporary outputs folder."""
    from pipelines import PipelineRegistry

    return PipelineRegistry(models_dir=session_dirs / "models", outputs_dir=session_dirs / "outputs",
                            device="cpu", dtype="float32", cache_size=2, save_outputs=True)


@pytest.fixture
def fresh_registry(tmp_path):
    """A registry of its own (for counting loads or files), on CPU, outputs in this test's tmp folder."""
    from pipelines import PipelineRegistry

    (tmp_path / "models").mkdir(exist_ok=True)
    return PipelineRegistry(models_dir=tmp_path / "models", outputs_dir=tmp_path / "outputs",
                            device="cpu", dtype="float32", cache_size=2, save_outputs=True)


@pytest.fixture
def small_request():
    """A quick request on the bundled model: 64x64, a few steps."""
    from pipelines import GenerationRequest

    return GenerationRequest(prompt="a large red circle in the center on a white background",
                             negative_prompt="blurry", model="shapes", scheduler="Euler a", steps=4,
                             guidance_scale=7.0, width=64, height=64, seed=1, num_images=1)


"""DreamBooth training mechanics on the bundled model: resuming after an interruption gives the same
weights as an uninterrupted run; stopping saves a checkpoint; bad settings are refused by name."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from dreambooth_support import heart_images, load_shapes
from safetensors.torch import load_file

from pipelines.dreambooth.config import TrainConfig, TrainingStopped
from pipelines.dreambooth.resume import checkpoints, read_state
from pipelines.dreambooth.train import TrainingConflict, train_dreambooth
from pipelines.requests import InvalidRequest


class Killed(Exception):
    """Stands in for the process being killed: nothing after the last checkpoint reaches the disk."""


@pytest.fixture(scope="module")
def base():
    return load_shapes()


@pytest.fixture(scope="module")
def hearts(tmp_path_factory):
    return heart_images(tmp_path_factory.mktemp("hearts"))


def config(out: Path, images: Path, **changes) -> TrainConfig:
    settings = dict(model="shapes", images=str(images), instance_prompt="a sks shape", out=str(out), steps=6,
                    checkpoint_every=2, learning_rate=1e-3, seed=3, resolution=64)
    settings.update(changes)
    return TrainConfig(**settings)


def train(base, cfg: TrainConfig, kill_after: int | None = None, stop_after: int | None = None):
    def progress(update):
        if kill_after is not None and update.phase == "training" and update.step == kill_after:
            raise Killed(update.step)

    steps_seen = []

    def should_stop():
        return stop_after is not None and len(steps_seen) >= stop_after

    def track(update):
        progress(update)
        if update.phase == "training":
            steps_seen.append(update.step)

    return train_dreambooth(cfg, copy.deepcopy(base), family="shapes", on_progress=track, should_stop=should_stop)


def final_weights(out: Path, method: str) -> dict:
    if method == "lora":
        return load_file(str(out / "pytorch_lora_weights.safetensors"))
    return load_file(str(out / "unet" / "diffusion_pytorch_model.safetensors"))


def assert_same(a: dict, b: dict):
    assert set(a) == set(b)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)


@pytest.mark.parametrize("method", ["lora", "full"])
def test_resume_after_a_kill_matches_an_uninterrupted_run(base, hearts, tmp_path, method):
    extra = dict(class_prompt="a shape", prior_preservation=True, num_class_images=2) if method == "lora" else {}
    straight = config(tmp_path / "straight", hearts, method=method, **extra)
    train(base, straight)
    interrupted = config(tmp_path / "interrupted", hearts, method=method, **extra)
    with pytest.raises(Killed):
        train(base, interrupted, kill_after=5)  # killed after step 5: the last checkpoint is step 4
    assert [step for step, _ in checkpoints(tmp_path / "interrupted")] == [2, 4]
    resumed = []
    train_dreambooth(interrupted, copy.deepcopy(base), family="shapes",
                     on_progress=lambda u: resumed.append(u.step) if u.phase == "training" else None)
    assert resumed == [5, 6]  # it went on from checkpoint-4, not from the start
    assert_same(final_weights(tmp_path / "interrupted", method), final_weights(tmp_path / "straight", method))
    base_weights = base["unet"].state_dict()
    if method == "full":  # and training really changed something
        changed = final_weights(tmp_path / "straight", method)
        assert any(not torch.equal(changed[k], base_weights[k]) for k in changed)


def test_stop_saves_a_checkpoint_and_the_same_command_continues(base, hearts, tmp_path):
    straight = config(tmp_path / "straight", hearts, steps=5, checkpoint_every=10)
    train(base, straight)
    stopped = config(tmp_path / "stopped", hearts, steps=5, checkpoint_every=10)
    with pytest.raises(TrainingStopped, match="run the same command again"):
        train(base, stopped, stop_after=3)
    assert [step for step, _ in checkpoints(tmp_path / "stopped")] == [3]
    assert read_state(tmp_path / "stopped" / "checkpoint-3")["settings"]["instance_prompt"] == "a sks shape"
    train(base, stopped)
    assert_same(final_weights(tmp_path / "stopped", "lora"), final_weights(tmp_path / "straight", "lora"))


def test_a_different_run_in_the_same_folder_is_refused(base, hearts, tmp_path):
    train(base, config(tmp_path / "out", hearts, steps=2))
    with pytest.raises(TrainingConflict, match="learning_rate"):
        train(base, config(tmp_path / "out", hearts, steps=4, learning_rate=5e-4))


def test_bad_settings_name_their_field(base, hearts, tmp_path):
    few = tmp_path / "few"
    few.mkdir()
    for path in sorted(hearts.iterdir())[:2]:
        (few / path.name).write_bytes(path.read_bytes())
    with pytest.raises(InvalidRequest, match="images.*3 to 20"):
        train(base, config(tmp_path / "a", few))
    with pytest.raises(InvalidRequest, match="class_prompt"):
        train(base, config(tmp_path / "b", hearts, prior_preservation=True))
    with pytest.raises(InvalidRequest, match="steps"):
        train(base, config(tmp_path / "c", hearts, steps=0))
    with pytest.raises(InvalidRequest, match="method"):
        train(base, config(tmp_path / "d", hearts, method="dora"))

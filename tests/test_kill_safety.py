"""A process killed (SIGKILL) in the middle of saving leaves no partial image, JSON, LoRA or checkpoint, and
a killed DreamBooth run resumes.

Each case runs the real command (`python -m studio ...`) through tests/kill_child.py, which makes one file
step hang (after the first 64 bytes of a temporary file, after the whole of it, or just before it is
published under its real name); the test kills the process there, checks what is on disk, and runs the
command again. (Killed between two training steps, the same command resuming: test_dreambooth_train.py.)
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from safetensors import safe_open

from pipelines.dreambooth.resume import checkpoints
from pipelines.outputs import STALE_TEMP_SECONDS

REPO = Path(__file__).resolve().parent.parent
CHILD = Path(__file__).resolve().parent / "kill_child.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}


def kill_at(hook: str, match: str, command: list[str], count: int = 1) -> str:
    """Run `python -m studio COMMAND` until it hangs at `hook`, then SIGKILL it; returns the path it hung on."""
    process = subprocess.Popen([sys.executable, str(CHILD), hook, match, str(count), "--", *command], env=ENV,
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stderr:
            if line.startswith("PAUSED "):
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=60)
                return line.split(" ", 2)[2].strip()
        raise AssertionError(f"the command ended without reaching {hook} {match!r} (status {process.wait()})")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio", *command], env=ENV, cwd=REPO, capture_output=True,
                          text=True, timeout=600, check=True)


def assert_whole_pngs(folder: Path) -> list[Path]:
    """Every PNG under `folder` decodes completely and carries its settings; returns them."""
    pngs = sorted(folder.rglob("*.png"))
    for path in pngs:
        with Image.open(path) as image:
            image.load()
            assert "parameters" in image.info and "studio_request" in image.info, path
    return pngs


GENERATE = ["generate", "--prompt", "a red circle", "--steps", "1", "--width", "64", "--height", "64", "--seed", "3"]


def test_an_image_killed_while_saving_is_absent_and_the_next_run_saves_whole(tmp_path):
    outputs = tmp_path / "outputs"
    command = [*GENERATE, "--out", str(outputs), "--models-dir", str(tmp_path)]
    for hook in ("write", "fsync", "link"):  # 64 bytes in; the whole temporary file; publishing it
        assert ".png" in kill_at(hook, ".png", command)
        assert assert_whole_pngs(outputs) == []  # no image at all rather than part of one
    leftovers = [p for p in outputs.rglob("*") if p.is_file()]
    assert leftovers and all(p.name.startswith(".") and p.name.endswith(".tmp") for p in leftovers), leftovers
    for path in leftovers:  # temporary files of writers killed long ago ...
        os.utime(path, (time.time() - STALE_TEMP_SECONDS - 60,) * 2)
    printed = run(command).stdout.split()
    assert [Path(p).name for p in printed] == ["00000-3.png"]
    assert assert_whole_pngs(outputs) == [Path(printed[0])]
    assert [p for p in outputs.rglob("*") if p.is_file()] == [Path(printed[0])]  # ... were swept by the next save


def _exported_files(folder: Path) -> dict[str, object]:
    """Each exported file that exists, read in full (a half-written one would raise here)."""
    found = {}
    for path in sorted(folder.iterdir()):
        if path.name.endswith(".studio.json"):
            found[path.name] = json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".safetensors":
            with safe_open(str(path), "pt") as weights:
                found[path.name] = sum(weights.get_tensor(key).numel() for key in weights.keys())
    return found


def test_an_export_killed_while_saving_leaves_whole_files_or_none(tmp_path):
    out = tmp_path / "export"
    command = ["export", "--model", "shapes", "--out", str(out / "shapes.safetensors"), "--models-dir", str(tmp_path)]
    kill_at("replace", "shapes.safetensors", command)  # publishing the checkpoint
    assert _exported_files(out) == {}  # nothing, rather than part of it
    for hook in ("write", "replace"):  # the sidecar: 64 bytes in, then publishing it
        kill_at(hook, "shapes.studio.json", command)
        files = _exported_files(out)
        assert list(files) == ["shapes.safetensors"] and files["shapes.safetensors"] > 1_000_000  # whole
    assert all(p.name.startswith(".") for p in out.iterdir() if p.name not in files)
    run(command)
    assert sorted(_exported_files(out)) == ["shapes.safetensors", "shapes.studio.json"]


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    from dreambooth_support import heart_images

    return heart_images(tmp_path_factory.mktemp("hearts"))


def _train(out: Path, models: Path, pictures: Path) -> list[str]:
    return ["train-dreambooth", "--model", "shapes", "--images", str(pictures), "--instance-prompt", "a sks shape",
            "--steps", "4", "--checkpoint-every", "2", "--resolution", "64", "--seed", "1", "--no-prior-preservation",
            "--batch-size", "1", "--lora-rank", "4", "--out", str(out), "--models-dir", str(models)]


def test_training_killed_while_saving_a_checkpoint_or_the_lora_resumes(tmp_path, pictures):
    models = tmp_path / "models"
    out = models / "sks"
    command = _train(out, models, pictures)
    # 1. killed as checkpoint-4 is published: checkpoint-2 is whole, no checkpoint-4, no LoRA
    kill_at("replace", "checkpoint-4", command)
    assert [step for step, _ in checkpoints(out)] == [2]
    assert not (out / "checkpoint-4").exists() and not (out / "pytorch_lora_weights.safetensors").exists()
    # 2. run again, killed as the finished LoRA is published: every checkpoint whole, still no LoRA
    kill_at("replace", str(out / "pytorch_lora_weights.safetensors"), command)
    assert [step for step, _ in checkpoints(out)] == [2, 4]
    assert not (out / "pytorch_lora_weights.safetensors").exists()
    for _, folder in checkpoints(out):
        json.loads((folder / "training_state.json").read_text(encoding="utf-8"))
        with safe_open(str(folder / "pytorch_lora_weights.safetensors"), "pt") as weights:
            assert len(list(weights.keys())) > 0
    # 3. run again: it resumes and writes the LoRA, which loads
    again = run(command)
    assert "resumed from checkpoint-4" in again.stdout
    with safe_open(str(out / "pytorch_lora_weights.safetensors"), "pt") as weights:
        assert len(list(weights.keys())) > 0
    assert json.loads((out / "studio.json").read_text(encoding="utf-8"))["type"] == "lora"


def test_replacing_and_pruning_checkpoints_never_leave_half_a_folder_under_its_name(tmp_path):
    from pipelines.dreambooth.resume import prune, replace_folder

    out = tmp_path / "run"
    for step in (2, 4, 6):
        (out / f"checkpoint-{step}").mkdir(parents=True)
        (out / f"checkpoint-{step}" / "training_state.json").write_text(json.dumps({"step": step}))
    staging = out / ".checkpoint-6.tmp"
    staging.mkdir()
    (staging / "training_state.json").write_text(json.dumps({"step": 6, "again": True}))
    replace_folder(staging, out / "checkpoint-6")
    assert json.loads((out / "checkpoint-6" / "training_state.json").read_text())["again"]
    prune(out, 1)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint-6"]  # nothing aside is left behind
    assert [step for step, _ in checkpoints(out)] == [6]

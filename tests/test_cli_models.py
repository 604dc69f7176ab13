"""`python -m studio generate` with a model given as a path, LoRAs (`--lora PATH[:WEIGHT]`, repeatable) and
the `--allow-ckpt` opt-in; bad values end in one line on stderr, a good run prints only its paths."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from dreambooth_support import REPO, SHAPES, load_shapes, shapes_lora_file
from PIL import Image

from pipelines.checkpoints.export import original_state_dict
from pipelines.metadata import read_png_info
from studio.cli import main

PROMPT = "a large red circle in the top left on a blue background"


@pytest.fixture(scope="module")
def loras(tmp_path_factory):
    root = tmp_path_factory.mktemp("loras")
    return [shapes_lora_file(root / f"{name}.safetensors", seed=seed) for seed, name in enumerate(("ink", "bold"))]


@pytest.fixture(scope="module")
def shapes_ckpt(tmp_path_factory):
    """The bundled model as a pickled .ckpt, with the sidecar that tells its family (a .ckpt is not opened
    to find out before the operator opts in)."""
    path = tmp_path_factory.mktemp("ckpt") / "shapes.ckpt"
    torch.save({"state_dict": original_state_dict(load_shapes())}, path)
    path.with_name("shapes.studio.json").write_text(json.dumps({"family": "shapes"}))
    return path


def generate(tmp_path, capsys, *extra: str):
    status = main(["generate", "--prompt", PROMPT, "--steps", "2", "--width", "64", "--height", "64", "--seed", "5",
                   "--out", str(tmp_path / "out"), "--models-dir", str(tmp_path / "models"), "--device", "cpu",
                   "--dtype", "float32", *extra])
    return status, capsys.readouterr()


def pixels(path: str) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_a_model_folder_path_with_two_loras(tmp_path, capsys, loras):
    ink, bold = loras
    status, with_loras = generate(tmp_path, capsys, "--model", str(SHAPES), "--lora", f"{ink}:0.8", "--lora", str(bold))
    assert status == 0, with_loras.err
    [path] = with_loras.out.splitlines()
    settings = read_png_info(path)
    assert settings["model"] == str(SHAPES)
    assert settings["loras"] == [(str(ink), 0.8), (str(bold), 1.0)]
    status, plain = generate(tmp_path, capsys, "--model", str(SHAPES))
    assert status == 0, plain.err
    [plain_path] = plain.out.splitlines()
    assert "loras" not in read_png_info(plain_path) or not read_png_info(plain_path)["loras"]
    assert np.abs(pixels(path) - pixels(plain_path)).max() > 8  # same seed: the LoRAs made the difference


def test_ckpt_needs_the_opt_in(tmp_path, capsys, shapes_ckpt):
    status, refused = generate(tmp_path, capsys, "--model", str(shapes_ckpt))
    assert status != 0 and refused.out == ""
    [line] = refused.err.strip().splitlines()
    assert line.startswith("error: model") and "--allow-ckpt" in line and "Traceback" not in refused.err
    status, allowed = generate(tmp_path, capsys, "--model", str(shapes_ckpt), "--allow-ckpt")
    assert status == 0, allowed.err
    [path] = allowed.out.splitlines()
    assert Image.open(path).size == (64, 64)


@pytest.mark.parametrize("make_args, words", [
    (lambda loras, tmp: ["--lora", str(tmp / "missing.safetensors")], ["loras", "missing.safetensors"]),
    (lambda loras, tmp: ["--lora", f"{loras[0]}:9"], ["loras", "-4 to 4", "9"]),
    (lambda loras, tmp: ["--lora", ""], ["loras", "PATH[:WEIGHT]"]),
    (lambda loras, tmp: ["--model", str(tmp / "no-such-folder")], ["model", "no-such-folder"]),
])
def test_bad_model_or_lora_is_one_line(tmp_path, capsys, loras, make_args, words):
    status, captured = generate(tmp_path, capsys, *make_args(loras, tmp_path))
    assert status != 0 and captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    for word in words:
        assert word in lines[0]
    assert not list(tmp_path.rglob("*.png"))


def test_a_successful_run_prints_only_paths_and_nothing_on_stderr(tmp_path, loras):
    """As a user runs it: no loading bars, no torchvision or LoRA notices, just the PNG paths."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-m", "studio", "generate", "--prompt", PROMPT, "--steps", "2",
                          "--width", "64", "--height", "64", "--num-images", "2", "--model", str(SHAPES),
                          "--lora", f"{loras[0]}:0.5", "--lora", str(loras[1]), "--out", str(tmp_path / "out"),
                          "--models-dir", str(tmp_path / "models"), "--device", "cpu", "--dtype", "float32"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    paths = run.stdout.splitlines()
    assert len(paths) == 2 and all(Path(path).is_file() for path in paths)

"""`python -m studio batch`: one request per line, results per line, resume, and the lines split across two
CPU processes (torchrun + accelerate's process state) giving the same images as one process."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from dreambooth_support import REPO, shapes_lora_file

SMALL = {"steps": 3, "width": 64, "height": 64}


@pytest.fixture(scope="module")
def prompts(tmp_path_factory):
    """Seven lines: samplers, two images, a LoRA, an adapter with a relative map path, a step cache, and one
    bad line (steps 0) in the middle."""
    from pipelines.shapes.render import condition_map, shape_geometry
    from pipelines.shapes.world import Scene

    root = tmp_path_factory.mktemp("batch")
    scene = Scene("star", "red", "blue", "large", "center")
    (root / "maps").mkdir()
    condition_map("sketch", scene, shape_geometry(scene)).resize((64, 64)).save(root / "maps" / "star.png")
    lora = shapes_lora_file(root / "loras" / "ink.safetensors")
    lines = [
        {"prompt": "a large red circle in the center on a white background", "seed": 1, "id": "circle", **SMALL},
        {"prompt": "small green star, bottom right, white background", "seed": 2, "scheduler": "DDIM",
         "num_images": 2, **SMALL},
        {"prompt": "a blue square", "seed": 3, "steps": 0},
        {"prompt": "a yellow triangle on black", "seed": 4, "loras": [f"{lora}:0.7"], **SMALL},
        {"prompt": "a red star on a blue background", "seed": 5, "scheduler": "Euler",
         "adapters": [{"kind": "sketch", "image": "maps/star.png", "weight": 0.9}], **SMALL},
        {"prompt": "a purple circle", "seed": 6, "scheduler": "DPM++ 2M", "step_cache": 2, **SMALL},
        {"prompt": "a white star on the left with a gray background", "seed": 7, **SMALL},
    ]
    path = root / "prompts.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path


def batch(prompts, out, processes: int = 1, timeout: int = 600):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "ACCELERATE_USE_CPU": "true"}
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
                if processes > 1 else [sys.executable])
    command = launcher + ["-m", "studio", "batch", str(prompts), "--out", str(out), "--models-dir", str(out / "none")]
    return subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def results(out) -> list[dict]:
    return [json.loads(text) for text in (out / "results.jsonl").read_text().splitlines()]


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def one_process(prompts, tmp_path_factory):
    out = tmp_path_factory.mktemp("one")
    return out, batch(prompts, out)


@pytest.fixture(scope="module")
def two_processes(prompts, tmp_path_factory):
    out = tmp_path_factory.mktemp("two")
    return out, batch(prompts, out, processes=2)


def test_every_line_gets_images_and_a_result(one_process):
    out, run = one_process
    assert run.returncode == 1, run.stderr  # one bad line
    records = {r["line"]: r for r in results(out)}
    assert sorted(records) == list(range(1, 8))
    assert records[3]["status"] == "error" and records[3]["field"] == "steps"
    assert "failed: lines 3" in run.stdout
    assert all(records[n]["status"] == "ok" for n in records if n != 3)
    assert records[1]["id"] == "circle" and records[2]["seeds"] == [2, 3]
    assert sorted(p.name for p in out.glob("*.png")) == [
        "00001-0.png", "00002-0.png", "00002-1.png", "00004-0.png", "00005-0.cond0.png", "00005-0.png",
        "00006-0.png", "00007-0.png"]


def test_images_carry_their_settings(one_process):
    from pipelines.metadata import read_png_info

    out, _ = one_process
    second = read_png_info(out / "00002-1.png")
    assert second["seed"] == 3 and second["scheduler"] == "DDIM" and second["num_images"] == 1
    assert read_png_info(out / "00006-0.png")["step_cache"] == 2
    assert read_png_info(out / "00004-0.png")["loras"][0][1] == 0.7


def test_two_processes_split_the_lines_and_draw_the_same_images(one_process, two_processes):
    (one, _), (two, run) = one_process, two_processes
    assert run.returncode != 0  # the bad line is reported from the main process
    records = results(two)
    lines = [r["line"] for r in records]
    assert sorted(lines) == list(range(1, 8)), "every line exactly once: none lost, none repeated"
    shares = [sum(r["process"] == p for r in records) for p in (0, 1)]
    assert sorted(shares) == [3, 4], shares  # 7 lines: an even split
    assert next(r for r in records if r["line"] == 3)["status"] == "error"
    names = sorted(p.name for p in one.glob("*.png"))
    assert names == sorted(p.name for p in two.glob("*.png"))
    for name in names:
        assert np.array_equal(pixels(one / name), pixels(two / name)), name


def test_a_second_run_resumes_where_the_first_stopped(prompts, one_process, tmp_path):
    one, _ = one_process
    out = tmp_path / "resumed"
    out.mkdir()
    kept = [r for r in results(one) if r["line"] in (1, 2)]  # as if the run had died after line 2
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    run = batch(prompts, out)
    assert "5 of 5 lines to do (2 of 7 done before)" in run.stdout, run.stdout
    redone = [r["line"] for r in results(out)[2:]]
    assert redone == [3, 4, 5, 6, 7]
    assert np.array_equal(pixels(out / "00007-0.png"), pixels(one / "00007-0.png"))
    assert not (out / "00001-0.png").exists()  # done before: not drawn again

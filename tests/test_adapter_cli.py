"""`python -m studio generate ... --adapter KIND=PATH[:WEIGHT] [--preprocess]` as a user runs it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.requests import InvalidRequest
from pipelines.shapes.render import depth_map, render, shape_geometry, sketch_map
from pipelines.shapes.world import Scene
from studio.cli import main
from studio.commands.adapter_args import parse_adapter

REPO = Path(__file__).resolve().parent.parent
SCENE = Scene("triangle", "green", "white", "large", "bottom left")


@pytest.fixture
def pictures(tmp_path):
    geometry = shape_geometry(SCENE)
    sketch_map(SCENE, geometry).save(tmp_path / "sketch.png")
    depth_map(SCENE, geometry).save(tmp_path / "depth.png")
    render(SCENE, geometry=geometry).resize((256, 256)).save(tmp_path / "photo.jpg", quality=95)
    return tmp_path


def _generate_args(tmp_path: Path, *extra: str) -> list[str]:
    return ["generate", "--prompt", "a large green triangle", "--steps", "2", "--width", "64", "--height", "64",
            "--seed", "11", "--out", str(tmp_path / "out"), "--models-dir", str(tmp_path / "models"),
            "--device", "cpu", "--dtype", "float32", *extra]


def test_two_conditions_with_weights_from_the_command_line(pictures):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-m", "studio", *_generate_args(
        pictures, "--adapter", f"sketch={pictures / 'sketch.png'}:0.75", "--adapter", f"depth={pictures / 'depth.png'}")],
        cwd=pictures, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    [path] = [Path(line) for line in run.stdout.splitlines()]
    assert path.is_file()
    maps = [path.with_name(f"{path.stem}.cond{k}.png") for k in (0, 1)]
    assert all(m.is_file() for m in maps)
    expected = np.asarray(Image.open(pictures / "sketch.png").convert("RGB").resize((64, 64), Image.LANCZOS))
    assert np.array_equal(np.asarray(Image.open(maps[0]).convert("RGB")), expected)
    saved = json.loads(Image.open(path).info["studio_request"])
    assert [(a["kind"], a["weight"], a["preprocess"]) for a in saved["adapters"]] == \
        [("sketch", 0.75, False), ("depth", 1.0, False)]


def test_preprocess_extracts_the_map_from_a_photo(pictures, capsys):
    status = main(_generate_args(pictures, "--adapter", f"edge={pictures / 'photo.jpg'}:0.5", "--preprocess"))
    assert status == 0, capsys.readouterr().err
    [line] = capsys.readouterr().out.splitlines()
    path = Path(line)
    edges = np.asarray(Image.open(path.with_name(f"{path.stem}.cond0.png")).convert("L"))
    assert 0 < (edges > 128).mean() < 0.25  # Canny edges of the triangle, not the photo itself
    assert json.loads(Image.open(path).info["studio_request"])["adapters"][0]["preprocess"] is True


@pytest.mark.parametrize("adapter,words", [
    ("sketch", ["KIND=PATH[:WEIGHT]"]),
    ("sketch=missing.png", ["missing.png", "does not exist"]),
    ("sketch={dir}/sketch.png:heavy", ["weight", "heavy"]),
    ("openpose={dir}/sketch.png", ["'openpose'", "shapes"]),
    ("depth={dir}/broken.png", ["cannot read"]),
])
def test_bad_adapter_flags_end_with_one_clear_line(pictures, capsys, adapter, words):
    (pictures / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    status = main(_generate_args(pictures, "--adapter", adapter.format(dir=pictures)))
    captured = capsys.readouterr()
    assert status != 0 and captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: adapters:")
    for word in words:
        assert word in lines[0]
    assert not (pictures / "out").exists() or not list((pictures / "out").rglob("*.png"))


def test_preprocess_without_an_adapter_is_an_error(pictures, capsys):
    assert main(_generate_args(pictures, "--preprocess")) != 0
    assert "--preprocess needs at least one --adapter" in capsys.readouterr().err


def test_adapter_spec_parsing_keeps_colons_in_paths(tmp_path):
    assert parse_adapter("depth=maps/d.png") == ("depth", "maps/d.png", 1.0)
    assert parse_adapter("sketch=C:/drawings/a.png:0.6") == ("sketch", "C:/drawings/a.png", 0.6)
    odd = tmp_path / "a:b.png"
    odd.write_bytes(b"")
    assert parse_adapter(f"edge={odd}") == ("edge", str(odd), 1.0)
    with pytest.raises(InvalidRequest, match="KIND=PATH"):
        parse_adapter("=x.png")

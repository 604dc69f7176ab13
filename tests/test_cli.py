"""`python -m studio ...` as a user runs it: files with metadata and their paths, or one clean error line."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from pipelines.metadata import read_png_info
from studio.cli import build_parser, main
from studio.commands import COMMANDS

REPO = Path(__file__).resolve().parent.parent
PROMPT = "a large red circle in the top left on a blue background"


def studio(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "studio", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def assert_one_line_error(run: subprocess.CompletedProcess, *words: str) -> None:
    assert run.returncode != 0
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in run.stderr
    for word in words:
        assert word in lines[0]


def test_generate_writes_pngs_with_metadata_and_prints_their_paths(tmp_path):
    out = tmp_path / "out"
    run = studio("generate", "--prompt", PROMPT, "--negative-prompt", "blurry", "--scheduler", "DPM++ 2M Karras",
                 "--steps", "3", "--guidance", "5.5", "--width", "64", "--height", "96", "--seed", "7",
                 "--num-images", "2", "--out", str(out), "--models-dir", str(tmp_path / "models"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    paths = [Path(line) for line in run.stdout.splitlines()]
    assert len(paths) == 2
    for path, seed in zip(paths, (7, 8)):
        assert path.is_file() and out in path.parents
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size == (64, 96)
        settings = read_png_info(path)
        assert settings["prompt"] == PROMPT and settings["negative_prompt"] == "blurry"
        assert (settings["scheduler"], settings["steps"], settings["guidance_scale"], settings["seed"]) == \
            ("DPM++ 2M Karras", 3, 5.5, seed)


@pytest.mark.parametrize("args, words", [
    (["--width", "100"], ["width", "multiple of 8"]),
    (["--scheduler", "Bogus"], ["scheduler", "Bogus", "Euler a"]),
])
def test_generate_refuses_bad_input_with_one_line(tmp_path, args, words):
    run = studio("generate", "--prompt", PROMPT, "--out", str(tmp_path / "out"), *args, cwd=tmp_path)
    assert_one_line_error(run, *words)
    assert not list(tmp_path.rglob("*.png"))


@pytest.mark.parametrize("args, words", [
    (["generate", "--prompt", PROMPT, "--steps", "0"], ["steps", "from 1"]),
    (["generate", "--prompt", PROMPT, "--num-images", "9"], ["num_images", "1 to 8"]),
    (["generate", "--prompt", PROMPT, "--model", "no-such-model"], ["model", "no-such-model", "shapes"]),
    (["generate", "--prompt", PROMPT, "--steps", "many"], ["--steps", "many"]),
    (["generate", "--prompt", PROMPT, "--clip-skip", "13"], ["clip_skip", "1 to 12"]),
    (["generate", "--prompt", PROMPT, "--device", "warp-drive"], ["device", "warp-drive"]),
    (["generate"], ["--prompt"]),
    ([], ["COMMAND"]),
    (["paint"], ["paint"]),
    (["download", "sd99"], ["sd99", "sd15"]),
    (["download"], ["KEY", "--adapter"]),
])
def test_bad_input_is_one_line_and_a_non_zero_status(tmp_path, monkeypatch, capsys, args, words):
    # In-process (the subprocess runs above show the same path end to end): main() must return, not raise.
    monkeypatch.chdir(tmp_path)
    try:
        status = main([*args, *(["--out", str(tmp_path / "out")] if args[:1] == ["generate"] else [])])
    except SystemExit as exit_:  # argparse ends the program itself
        status = exit_.code
    captured = capsys.readouterr()
    assert_one_line_error(subprocess.CompletedProcess(args, status, captured.out, captured.err), *words)
    assert not list(tmp_path.rglob("*.png"))


def test_generate_takes_a_clip_skip(tmp_path):
    from studio.commands.common import make_registry
    from studio.commands.generate import request_from_args

    args = build_parser().parse_args(["generate", "--prompt", PROMPT, "--clip-skip", "2",
                                      "--models-dir", str(tmp_path / "models")])
    assert request_from_args(args, make_registry(args)).clip_skip == 2
    args = build_parser().parse_args(["generate", "--prompt", PROMPT, "--models-dir", str(tmp_path / "models")])
    assert request_from_args(args, make_registry(args)).clip_skip == 1


def sampler_rows(text: str) -> dict[str, tuple[str, str]]:
    """`schedulers` output -> {sampler: (suggested steps, Automatic schedule)}."""
    rows = {}
    for line in text.splitlines():
        match = re.fullmatch(r"(.+?)\s+(\d+) steps\s+Automatic = (.+)", line)
        if match:
            rows[match.group(1)] = (match.group(2), match.group(3))
    return rows


def test_schedulers_lists_names_steps_and_schedules(capsys):
    assert main(["schedulers"]) == 0
    out = capsys.readouterr().out
    rows = sampler_rows(out)
    assert rows["Euler a"] == ("20", "Uniform") and rows["DPM++ 2M"] == ("20", "Karras") and "LCM" in rows
    assert "Schedule types (--schedule-type): Automatic, Uniform, Karras, Exponential" in out
    assert main(["schedulers", "--names-only"]) == 0
    names = capsys.readouterr().out.splitlines()
    assert names[0] == "DPM++ 2M" and "DDIM" in names and len(names) == len(rows)


def test_models_lists_the_bundled_model_as_ready(tmp_path, capsys):
    assert main(["models", "--models-dir", str(tmp_path / "models")]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "ready" in lines["shapes"]
    assert "python -m studio download sd15" in lines["sd15"] or "ready" in lines["sd15"]


def test_readme_lists_every_scheduler_with_its_suggested_steps(capsys):
    assert main(["schedulers"]) == 0
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for name, (steps, automatic) in sampler_rows(capsys.readouterr().out).items():
        row = f"| {name} | {steps} | {automatic.split(' ')[0] if automatic.startswith('none') else automatic} |"
        assert row in readme, f"README's sampler table lacks {row!r}"


def test_every_command_module_follows_the_command_shape():
    parser = build_parser()
    subcommands = next(a for a in parser._actions if a.dest == "command").choices
    assert {"generate", "models", "schedulers", "download"} <= set(subcommands)
    for command in COMMANDS:
        assert command.NAME in subcommands and command.HELP
        assert callable(command.add_arguments) and callable(command.run)

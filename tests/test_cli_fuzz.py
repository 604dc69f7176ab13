"""Every CLI command with wrong types, empty, out-of-range, huge, NaN and infinite values, missing and broken
files: exit status 2 and one line on stderr that names the problem, never a traceback (run in-process)."""
from __future__ import annotations

import signal

import pytest
from PIL import Image

from studio.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_files")
    Image.new("1", (20000, 20000)).save(folder / "bomb.png")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(300))
    Image.new("RGB", (64, 64), "white").save(folder / "plain.png")
    (folder / "a-file").write_text("not a folder")
    two = folder / "two"
    two.mkdir()
    for k in range(2):
        Image.new("RGB", (64, 64), "red").save(two / f"{k}.png")
    broken = folder / "broken"
    broken.mkdir()
    for k in range(3):
        Image.new("RGB", (64, 64), "red").save(broken / f"{k}.png")
    (broken / "3.png").write_bytes(b"not a picture")
    bombs = folder / "bombs"
    bombs.mkdir()
    for k in range(3):
        Image.new("RGB", (64, 64), "red").save(bombs / f"{k}.png")
    Image.new("1", (20000, 20000)).save(bombs / "3.png")
    return folder


GENERATE = ["generate", "--prompt", "a red circle", "--steps", "1", "--width", "64", "--height", "64"]
TRAIN = ["train-dreambooth", "--model", "shapes", "--instance-prompt", "a sks shape", "--steps", "2",
         "--resolution", "64"]

CASES = [
    # generate: each field
    (GENERATE + ["--steps", "abc"], "--steps"), (GENERATE + ["--steps", "1e9"], "--steps"),
    (GENERATE + ["--steps", "100000"], "steps: must be from 1 to"), (GENERATE + ["--steps", "-1"], "steps:"),
    (GENERATE + ["--guidance", "nan"], "guidance_scale: must be a finite number"),
    (GENERATE + ["--guidance", "inf"], "guidance_scale:"), (GENERATE + ["--guidance", "1e309"], "guidance_scale:"),
    (GENERATE + ["--guidance", "-3"], "guidance_scale: must be from 0"), (GENERATE + ["--width", "100"], "width:"),
    (GENERATE + ["--width", "9" * 30], "width:"), (GENERATE + ["--height", "0"], "height:"),
    (GENERATE + ["--seed", "-5"], "seed:"), (GENERATE + ["--seed", str(2**40)], "seed:"),
    (GENERATE + ["--num-images", "0"], "num_images:"), (GENERATE + ["--num-images", "10000"], "num_images:"),
    (GENERATE + ["--scheduler", ""], "scheduler:"), (GENERATE + ["--scheduler", "Bogus"], "scheduler: unknown"),
    (GENERATE + ["--model", ""], "model:"), (GENERATE + ["--model", "/nonexistent/model"], "model: unknown"),
    (GENERATE + ["--model", "x" * 5000], "model: unknown"), (GENERATE + ["--prompt", "x" * 100_000], "prompt:"),
    (GENERATE + ["--negative-prompt", "y" * 3000], "negative_prompt:"),
    (GENERATE + ["--lora", ""], "loras:"), (GENERATE + ["--lora", "ink:nan"], "loras:"),
    (GENERATE + ["--lora", "missing"], "loras: unknown LoRA"), (GENERATE + ["--lora", "ink:1e999"], "loras:"),
    (GENERATE + ["--adapter", "sketch"], "adapters: --adapter takes KIND=PATH"),
    (GENERATE + ["--adapter", "sketch=/nonexistent.png"], "adapters: condition image"),
    (GENERATE + ["--adapter", "sketch={files}/bomb.png"], "million pixels"),
    (GENERATE + ["--adapter", "sketch={files}/corrupt.png"], "adapters: cannot read"),
    (GENERATE + ["--adapter", "sketch={files}/plain.png:heavy"], "adapters: the weight"),
    (GENERATE + ["--adapter", "nope={files}/plain.png"], "adapters:"),
    (GENERATE + ["--adapter", "sketch={files}/plain.png:99"], "adapters:"),
    (GENERATE + ["--adapter-factor", "0.5", "--adapter", "sketch={files}/plain.png"], "adapter_conditioning_factor"),
    (GENERATE + ["--preprocess"], "adapters: --preprocess needs"),
    (GENERATE + ["--device", "quantum"], "device"), (GENERATE + ["--dtype", "float7"], "dtype"),
    (GENERATE + ["--out", "{files}/a-file"], "a-file"),
    # export
    (["export", "--model", "nope", "--out", "{tmp}/x.safetensors"], "model: unknown"),
    (["export", "--model", "shapes", "--out", "{tmp}/x.txt"], ".safetensors"),
    (["export", "--model", "shapes", "--out", "{tmp}/x.safetensors", "--dtype", "fp8"], "--dtype"),
    (["export", "--model", "shapes", "--out", "{tmp}/x.safetensors", "--lora", "missing"], "missing"),
    # download (offline here: bad input is refused before any network)
    (["download", "nope"], "nope"), (["download", "--adapter", "sd9/none"], "'sd9'"),
    (["download", "sd15", "--variant", "fp8"], "--variant"),
    # train-dreambooth
    (TRAIN + ["--images", "/nonexistent", "--out", "{tmp}/o"], "images:"),
    (TRAIN + ["--images", "{files}/two", "--out", "{tmp}/o"], "images: DreamBooth needs 3 to 20"),
    (TRAIN + ["--images", "{files}/broken", "--out", "{tmp}/o"], "images: cannot read 3.png"),
    (TRAIN + ["--images", "{files}/bombs", "--out", "{tmp}/o"], "million pixels"),
    (TRAIN + ["--images", "{files}/broken", "--out", "{tmp}/o", "--steps", "0"], "steps"),
    (TRAIN + ["--images", "{files}/broken", "--out", "{tmp}/o", "--learning-rate", "nan"], "learning_rate"),
    (TRAIN + ["--images", "{files}/broken", "--out", "{tmp}/o", "--resolution", "7"], "resolution"),
    (TRAIN + ["--images", "{files}/broken", "--out", "{tmp}/o", "--lora-rank", "0"], "lora_rank"),
    (TRAIN + ["--images", "{files}/broken", "--out", "{tmp}/o", "--batch-size", "-1"], "batch_size"),
    (TRAIN + ["--images", "{files}/broken", "--out", "{tmp}/o", "--prior-target", "bogus"], "prior_target"),
    (TRAIN + ["--images", "{files}/broken", "--out", "{tmp}/o", "--prior-preservation", "--class-prompt", " "],
     "class_prompt"),
    (TRAIN + ["--images", "{files}/broken", "--out", "{tmp}/o", "--mixed-precision", "fp8"], "--mixed-precision"),
    (TRAIN + ["--images", "{files}/broken", "--out", "{tmp}/o", "--model", "nope"], "model: unknown"),
    (["no-such-command"], "invalid choice"), ([], "COMMAND"),
]


@pytest.mark.parametrize("argv, expected", CASES, ids=[f"{k:02d}" for k in range(len(CASES))])
def test_bad_cli_input_ends_with_one_line_naming_the_problem(argv, expected, files, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # ./models, ./outputs: this test's own
    argv = [arg.replace("{files}", str(files)).replace("{tmp}", str(tmp_path)) for arg in argv]
    sigint = signal.getsignal(signal.SIGINT)
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse's own errors
        status = exit_.code
    finally:
        signal.signal(signal.SIGINT, sigint)  # train-dreambooth installs its Ctrl-C handler
    err = capsys.readouterr().err
    assert status == 2, (status, err[-500:])
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error:") and expected in last, last

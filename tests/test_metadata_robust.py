"""Broken, hostile or odd files: a clear note, never an exception (only a file that is no image raises)."""
from __future__ import annotations

import json
import zlib

import pytest
from metadata_support import chunk, exif, itxt, jpeg, png, text
from PIL import Image, UnidentifiedImageError

from pipelines.metadata import read_png_info, read_settings
from pipelines.metadata.settings import MAX_CHUNK_CHARS


def test_malformed_json_is_a_note(tmp_path):
    settings = read_settings(png(tmp_path / "bad.png", text("prompt", '{"3": {"class_type": "KSampler", '),
                                 text("invokeai_metadata", "[1, 2")))
    assert settings.source == "InvokeAI" and settings.fields == {}
    assert any("'invokeai_metadata' chunk is not valid JSON" in note for note in settings.notes)


def test_wrong_types_are_kept_as_unknown_with_a_note(tmp_path):
    parameters = "p\nSteps: many, Sampler: Euler, CFG scale: 7, Seed: 1.5, Size: big"
    settings = read_settings(png(tmp_path / "t.png", text("parameters", parameters)))
    assert settings.fields == {"prompt": "p", "negative_prompt": "", "scheduler": "Euler",
                               "schedule_type": "Automatic", "guidance_scale": 7.0}
    assert settings.unknown == {"Steps": "many", "Seed": "1.5", "Size": "big"}
    assert len(settings.notes) == 3
    graph = {"3": {"class_type": "KSampler", "inputs": {"seed": {"x": 1}, "steps": [1, 2, 3], "cfg": "high",
                                                        "sampler_name": 7, "scheduler": None,
                                                        "positive": ["9", 0], "latent_image": 5}}}
    comfy = read_settings(png(tmp_path / "c.png", text("prompt", json.dumps(graph))))
    assert comfy.source == "ComfyUI" and "seed" not in comfy.fields and "guidance_scale" not in comfy.fields
    assert comfy.unknown["cfg"] == "high" and comfy.fields["scheduler"] == "7"
    swarm = {"sui_image_params": {"prompt": ["not", "text"], "seed": "x", "loras": ["a"], "loraweights": ["?"]}}
    bad = read_settings(png(tmp_path / "s.png", text("parameters", json.dumps(swarm))))
    assert bad.source == "SwarmUI" and "prompt" not in bad.fields and bad.unknown["seed"] == "x"
    assert bad.unknown["LoRAs: a"] == "?"


def test_json_of_no_known_studio_is_not_a_prompt(tmp_path):
    settings = read_settings(png(tmp_path / "j.png", text("parameters", json.dumps({"foo": 1, "bar": [2]}))))
    assert settings.fields == {} and settings.source == "" and settings.notes


def test_huge_and_bomb_chunks_are_skipped_with_a_note(tmp_path):
    huge = json.dumps({"prompt": "x" * (MAX_CHUNK_CHARS + 10)})
    settings = read_settings(png(tmp_path / "huge.png", text("prompt", huge)))
    assert settings.fields == {} and any("only chunks up to" in note for note in settings.notes)
    bomb = chunk(b"zTXt", b"workflow\0\0" + zlib.compress(b" " * (8 << 20), 9))  # 8 MB of spaces in 8 kB
    settings = read_settings(png(tmp_path / "bomb.png", bomb, text("parameters", "p\nSteps: 3, Seed: 1, CFG scale: 2")))
    assert settings.fields["steps"] == 3
    assert any("too large once decompressed" in note for note in settings.notes)


def test_truncated_png_and_broken_chunks(tmp_path):
    path = png(tmp_path / "t.png", text("parameters", "p\nSteps: 3, Seed: 1, CFG scale: 2"))
    data = path.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: data.index(b"IEND") - 4])
    settings = read_settings(tmp_path / "cut.png")
    assert settings.fields["steps"] == 3 and any("truncated" in note for note in settings.notes)
    broken = chunk(b"zTXt", b"parameters\0\0" + b"not zlib at all")
    settings = read_settings(png(tmp_path / "broken.png", broken))
    assert settings.fields == {} and any("could not be decoded" in note for note in settings.notes)


def test_cyclic_comfy_graph_terminates(tmp_path):
    graph = {"1": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 2, "cfg": 3, "sampler_name": "euler",
                                                        "scheduler": "normal", "positive": ["2", 0],
                                                        "negative": ["2", 0], "model": ["3", 0],
                                                        "latent_image": ["4", 0]}},
             "2": {"class_type": "ConditioningCombine", "inputs": {"conditioning_1": ["2", 0],
                                                                   "conditioning_2": ["5", 0]}},
             "3": {"class_type": "ModelMergeSimple", "inputs": {"model1": ["3", 0], "model": ["3", 0]}},
             "4": {"class_type": "LatentUpscaleBy", "inputs": {"samples": ["1", 0], "scale_by": 2}},
             "5": {"class_type": "CLIPTextEncode", "inputs": {"text": "loop", "clip": ["5", 0]}}}
    settings = read_settings(png(tmp_path / "loop.png", text("prompt", json.dumps(graph))))
    assert settings.fields["prompt"] == "loop" and settings.fields["steps"] == 2


def test_unmapped_sampler_is_kept_and_noted(tmp_path):
    settings = read_settings(png(tmp_path / "u.png", text("parameters",
                                                          "p\nSteps: 5, Sampler: Euler SMEA Dy, CFG scale: 3, Seed: 1")))
    assert settings.fields["scheduler"] == "Euler SMEA Dy"
    assert any("'Euler SMEA Dy' has no AUTOMATIC1111 name" in note for note in settings.notes)


def test_not_an_image_raises_and_plain_images_read_empty(tmp_path):
    (tmp_path / "x.png").write_text("hello")
    with pytest.raises((UnidentifiedImageError, OSError)):
        read_settings(tmp_path / "x.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "plain.jpg")
    for name in ("plain.png", "plain.jpg"):
        assert read_png_info(tmp_path / name) == {} and read_settings(tmp_path / name).source == ""


def test_text_chunks_in_every_encoding_and_position(tmp_path):
    for make in (lambda: text("parameters", "café\nSteps: 3, Seed: 1, CFG scale: 2", encoding="latin-1"),
                 lambda: itxt("parameters", "café\nSteps: 3, Seed: 1, CFG scale: 2", compressed=True)):
        for after in (True, False):
            path = png(tmp_path / "e.png", make(), after_data=after)
            assert read_png_info(path)["prompt"] == "café"


def test_exif_comment_without_byte_order_in_little_endian(tmp_path):
    comment = b"UNICODE\0" + "a fox\nSteps: 3, Sampler: Euler, CFG scale: 2, Seed: 1".encode("utf-16-le")
    assert read_png_info(jpeg(tmp_path / "le.jpg", exif(comment)))["prompt"] == "a fox"


def test_read_from_an_open_image_and_from_bytes(tmp_path):
    path = png(tmp_path / "o.png", text("parameters", "p\nSteps: 3, Sampler: Euler, CFG scale: 2, Seed: 1"))
    with Image.open(path) as image:
        image.load()
        assert read_png_info(image)["steps"] == 3
    assert read_png_info(path.read_bytes())["steps"] == 3


def test_a1111_values_holding_json_or_unquoted_commas():
    from pipelines.metadata.a1111_text import parse_settings_line

    line = ('Steps: 15, Sampler: UniPC, CFG scale: 5, Seed: 235284042, Size: 512x400, Model hash: c0d1994c73, '
            'Hashes: {"vae": "c6a580b13a", "model": "c0d1994c73"}, Civitai resources: [{"type":"lora","weight":0.8}], '
            'Lora hashes: "ink: 3f1a, x: 12", Prompt: "a \\"quoted\\" word, x", Tiling, Version: v1.10.1')
    assert parse_settings_line(line) == {
        "Steps": "15", "Sampler": "UniPC", "CFG scale": "5", "Seed": "235284042", "Size": "512x400",
        "Model hash": "c0d1994c73", "Hashes": '{"vae": "c6a580b13a", "model": "c0d1994c73"}',
        "Civitai resources": '[{"type":"lora","weight":0.8}]', "Lora hashes": "ink: 3f1a, x: 12",
        "Prompt": 'a "quoted" word, x', "Tiling": "Tiling", "Version": "v1.10.1"}

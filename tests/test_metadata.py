"""PNG metadata: A1111-compatible `parameters`, our request as JSON, reading other studios' files back,
and atomic writes."""
from __future__ import annotations

import hashlib
import json
import os
import re
from types import SimpleNamespace

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from pipelines import GenerationRequest
from pipelines.metadata import (FileHashes, a1111_parameters, parse_parameters, png_text_chunks, quote,
                                read_png_info, read_settings, split_parameters)
from pipelines.outputs import OutputWriter, write_png_atomic

# AUTOMATIC1111's own pattern for the last line (modules/infotext_utils.py).
A1111_RE = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')

A1111_TEXT = """a watercolor fox in a birch forest
Negative prompt: blurry, lowres
Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234567890, Size: 512x768, \
Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.10.1"""


def a1111_png(tmp_path, text: str):
    info = PngInfo()
    info.add_text("parameters", text)
    path = tmp_path / "a1111.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


def test_saved_png_round_trips_to_the_request(fresh_registry, small_request):
    request = small_request.with_(prompt="a red circle, top left: large\nsecond line", scheduler="DPM++ 2M Karras",
                                  guidance_scale=6.5, seed=77, steps=2)
    path = fresh_registry.generate(request).paths[0]
    info = read_png_info(path)
    assert GenerationRequest(**info) == request
    text = png_text_chunks(path)["parameters"]
    last = text.splitlines()[-1]
    assert len(A1111_RE.findall(last)) >= 3
    assert "Sampler: DPM++ 2M, Schedule type: Karras" in last
    assert "CFG scale: 6.5" in last and "Seed: 77" in last and "Size: 64x64" in last and "Model: shapes" in last
    assert "Model hash" not in last  # a diffusers folder has no file A1111 or Civitai would hash
    # the A1111 text alone (without our JSON chunk) gives the same fields back, sampler named the A1111 way
    parsed = parse_parameters(text)
    for field in ("prompt", "negative_prompt", "steps", "guidance_scale", "seed", "width", "height", "model"):
        assert parsed[field] == getattr(request, field), field
    assert (parsed["scheduler"], parsed["schedule_type"]) == ("DPM++ 2M", "Karras")


def test_a1111_written_parameters_read_back(tmp_path):
    settings = read_settings(a1111_png(tmp_path, A1111_TEXT))
    assert settings.fields == {"prompt": "a watercolor fox in a birch forest", "negative_prompt": "blurry, lowres",
                               "steps": 30, "scheduler": "DPM++ 2M", "schedule_type": "Karras",
                               "guidance_scale": 7.0, "seed": 1234567890, "width": 512, "height": 768,
                               "model": "v1-5-pruned-emaonly"}
    assert settings.unknown == {"Model hash": "6ce0161689", "Version": "v1.10.1"}
    assert settings.source == "AUTOMATIC1111" and settings.notes == ()


def test_multi_line_negative_prompt():
    text = "p\nNegative prompt: bad\nworse\nSteps: 5, Sampler: DPM adaptive, CFG scale: 3, Seed: 1"
    prompt, negative, params = split_parameters(text)
    assert (prompt, negative) == ("p", "bad\nworse")
    assert parse_parameters(text)["scheduler"] == "DPM adaptive"


def test_text_without_a_parameters_line_is_all_prompt():
    assert parse_parameters("just a prompt, nothing else") == {"prompt": "just a prompt, nothing else",
                                                              "negative_prompt": ""}


def test_values_with_separators_are_json_quoted():
    assert quote("plain") == "plain"
    assert quote("a, b") == '"a, b"' and quote("C:\\models\\x") == json.dumps("C:\\models\\x")
    request = GenerationRequest(prompt="p", model="C:\\models\\my, model.safetensors", seed=3,
                                loras=[("style", 0.75), ("other:v2", 1.0)])
    text = a1111_parameters(request)
    assert len(A1111_RE.findall(text.splitlines()[-1])) >= 3
    parsed = parse_parameters(text)
    assert parsed["model"] == "C:\\models\\my, model.safetensors"
    assert parsed["loras"] == [("style", 0.75), ("other:v2", 1.0)]


def test_fields_of_other_features_are_written_and_read_the_a1111_way():
    fields = {"prompt": "p", "negative_prompt": "", "model": "sd15", "scheduler": "Euler a",
              "schedule_type": "Automatic", "steps": 20, "guidance_scale": 7.0, "width": 512, "height": 512,
              "seed": 5, "clip_skip": 2, "variation_seed": 99, "variation_strength": 0.25, "hires_scale": 2.0,
              "hires_steps": 10, "hires_upscaler": "Latent", "hires_denoising": 0.5}
    text = a1111_parameters(fields)
    assert "Clip skip: 2" in text and "Variation seed: 99, Variation seed strength: 0.25" in text
    assert "Hires upscale: 2, Hires steps: 10, Hires upscaler: Latent, Denoising strength: 0.5" in text
    assert parse_parameters(text) == fields  # Euler a + Automatic: no Schedule type written, read as Automatic
    inpaint = {**{k: fields[k] for k in ("prompt", "scheduler", "steps", "seed")}, "denoising_strength": 0.75,
               "mask_blur": 4, "inpaint_area": "Only masked", "masked_content": "original"}
    read = parse_parameters(a1111_parameters(inpaint))
    assert {k: read[k] for k in ("denoising_strength", "mask_blur", "inpaint_area", "masked_content")} == \
        {"denoising_strength": 0.75, "mask_blur": 4, "inpaint_area": "Only masked", "masked_content": "original"}


def test_model_hash_is_a1111s_short_sha256_computed_once_per_file(tmp_path, monkeypatch):
    from pipelines.metadata import hashes

    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"weights" * 100_000)
    spec = SimpleNamespace(format="single_file", source=str(checkpoint), unet_path=None)
    calls = []
    real = hashes.sha256_file
    monkeypatch.setattr(hashes, "sha256_file", lambda path: calls.append(path) or real(path))
    file_hashes = FileHashes()
    assert calls == []  # nothing happens before it is asked for
    expected = hashlib.sha256(checkpoint.read_bytes()).hexdigest()[:10]
    assert file_hashes.model_fields(spec) == {"Model hash": expected}
    assert file_hashes.model_fields(spec) == {"Model hash": expected} and len(calls) == 1
    checkpoint.write_bytes(b"other weights")  # a changed file is hashed again
    os.utime(checkpoint, ns=(1, 1))
    assert file_hashes.short(checkpoint) == hashlib.sha256(b"other weights").hexdigest()[:10] and len(calls) == 2
    assert file_hashes.model_fields(SimpleNamespace(format="diffusers", source=str(tmp_path), unet_path=None)) == {}
    text = a1111_parameters(GenerationRequest(prompt="p", seed=1), {"Model hash": expected})
    assert f"Size: 128x128, Model hash: {expected}, Model: shapes," in text  # A1111's order


@pytest.fixture(scope="module")
def shapes_single_file(tmp_path_factory):
    from dreambooth_support import load_shapes

    from pipelines.checkpoints.export import export_components

    folder = tmp_path_factory.mktemp("single")
    path = export_components(load_shapes(), folder / "shapes-single.safetensors", dtype="fp32")
    (folder / "shapes-single.studio.json").write_text(json.dumps({"family": "shapes"}))
    return path


def test_generating_from_a_single_file_writes_its_model_hash(fresh_registry, small_request, shapes_single_file):
    request = small_request.with_(model=str(shapes_single_file), steps=2)
    path = fresh_registry.generate(request).paths[0]
    expected = hashlib.sha256(shapes_single_file.read_bytes()).hexdigest()[:10]
    settings = read_settings(path)
    assert f"Model hash: {expected}, Model: " in png_text_chunks(path)["parameters"]
    assert settings.source == "Diffusion Studio" and settings.fields["model"] == str(shapes_single_file)


def test_invokeai_metadata_reads_back(tmp_path):
    info = PngInfo()
    info.add_text("invokeai_metadata", json.dumps({"positive_prompt": "a dog", "negative_prompt": "", "seed": 9,
                                                   "steps": 25, "cfg_scale": 6, "scheduler": "dpmpp_2m_k",
                                                   "width": 512, "height": 512, "model": {"name": "sd-1.5"}}))
    path = tmp_path / "invoke.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    parsed = read_png_info(path)
    assert (parsed["scheduler"], parsed["schedule_type"]) == ("DPM++ 2M", "Karras")
    assert parsed["seed"] == 9 and parsed["model"] == "sd-1.5"


def test_png_without_metadata_reads_as_empty(tmp_path):
    path = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(path)
    assert read_png_info(path) == {} and read_png_info(Image.open(path)) == {}


class FailingImage:
    """Writes part of a file, then fails, like a full disk."""

    def save(self, f, **kwargs):
        f.write(b"\x89PNG partial")
        raise OSError("No space left on device")

    def convert(self, mode):
        return self


def test_failed_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "out" / "image.png"
    with pytest.raises(OSError):
        write_png_atomic(FailingImage(), target)
    assert not target.exists() and os.listdir(tmp_path / "out") == []


def test_failed_save_removes_its_condition_maps(tmp_path, small_request):
    writer = OutputWriter(tmp_path)
    with pytest.raises(OSError):
        writer.save(FailingImage(), small_request, condition_maps=(Image.new("RGB", (64, 64)),))
    assert list(tmp_path.rglob("*")) == [writer.folder()]


def test_existing_file_survives_a_failed_overwrite(tmp_path):
    target = tmp_path / "image.png"
    Image.new("RGB", (4, 4), "red").save(target)
    with pytest.raises(OSError):
        write_png_atomic(FailingImage(), target)
    assert Image.open(target).getpixel((0, 0)) == (255, 0, 0)
    assert os.listdir(tmp_path) == ["image.png"]


def test_a_number_taken_by_another_process_is_skipped(tmp_path, small_request):
    writer = OutputWriter(tmp_path)
    first = writer.save(Image.new("RGB", (8, 8)), small_request)
    taken = writer.folder() / "00001-1.png"  # as if another process published it just now
    original = Image.new("RGB", (8, 8), "red")
    original.save(taken)
    real_next = OutputWriter.next_number
    calls = []

    def stale_next(folder):  # the other process wrote after we counted
        calls.append(folder)
        return 1 if len(calls) == 1 else real_next(folder)

    writer.next_number = stale_next
    second = writer.save(Image.new("RGB", (8, 8)), small_request, condition_maps=(Image.new("RGB", (8, 8)),))
    assert first.endswith("00000-1.png") and second.endswith("00002-1.png")
    assert Image.open(taken).getpixel((0, 0)) == (255, 0, 0)
    assert sorted(p.name for p in writer.folder().iterdir()) == ["00000-1.png", "00001-1.png", "00002-1.cond0.png",
                                                                 "00002-1.png"]

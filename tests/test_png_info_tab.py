"""The PNG Info tab: what it shows for a file, and what "Send to Text to Image" puts in the form."""
from __future__ import annotations

import json

import gradio as gr
import pytest
from metadata_support import png, text

from pipelines.metadata import read_settings
from studio.forms import FORM_FIELDS, build_request
from studio.tabs.png_info import NOTHING_FOUND, describe, form_updates, form_values, read_image_info

COMFY = {"3": {"class_type": "KSampler", "inputs": {
    "seed": 12, "steps": 6, "cfg": 5.5, "sampler_name": "dpmpp_2m", "scheduler": "karras", "denoise": 1,
    "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "my models\\shapes.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 96, "height": 64, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red circle", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
    "8": {"class_type": "FreeU_V2", "inputs": {"b1": 1.3, "b2": 1.4, "s1": 0.9, "s2": 0.2, "model": ["4", 0]}}}


@pytest.fixture
def form():
    with gr.Blocks():
        return {name: gr.Textbox() for name in (*FORM_FIELDS, "loras", "lora_weight")}


def test_api_returns_the_raw_text_and_the_fields(tmp_path):
    path = png(tmp_path / "c.png", text("prompt", json.dumps(COMFY)))
    raw, fields = read_image_info(str(path))
    assert raw.startswith("prompt:\n{") and fields["prompt"] == "a red circle"
    settings = read_settings(path)
    assert describe(settings).startswith("**Recognised:** ComfyUI (from `prompt`)")
    assert settings.unknown == {"FreeU_V2 #8": {"b1": 1.3, "b2": 1.4, "s1": 0.9, "s2": 0.2}}
    plain = png(tmp_path / "plain.png")
    assert read_image_info(str(plain)) == (NOTHING_FOUND, {})
    assert describe(read_settings(plain)).startswith("No studio's settings")


def test_send_fills_the_form_with_a_local_model_and_a1111s_sampler_pair(registry, form, tmp_path):
    fields = read_settings(png(tmp_path / "c.png", text("prompt", json.dumps(COMFY)))).fields
    updates = {name: updates_value for name, component in form.items()
               for c, updates_value in form_updates(registry, form, fields).items() if c is component}
    assert updates["model"] == "shapes"  # "my models\\shapes.safetensors" is the local "shapes"
    assert updates["prompt"] == "a red circle" and updates["seed"] == 12 and updates["width"] == 96
    assert (updates["scheduler"], updates["schedule_type"]) == ("DPM++ 2M", "Karras")  # dpmpp_2m + karras
    request = build_request(**{name: updates[name] for name in FORM_FIELDS if name in updates})
    registry.validate(request.with_(steps=2))  # a request the engine accepts (shapes: 64-256 px)


def test_form_values_keeps_what_the_form_cannot_take():
    fields = {"prompt": "p", "scheduler": "Euler a", "schedule_type": "Automatic", "clip_skip": 2,
              "loras": [["ink", 0.5], ["bold", 0.8]]}
    values, left_out, messages = form_values(fields, (*FORM_FIELDS, "loras", "lora_weight"))
    assert values["loras"] == ["ink", "bold"] and values["lora_weight"] == 0.5
    assert "clip_skip" in left_out and any("several LoRA weights" in m for m in messages)
    assert values["schedule_type"] == "Automatic"
    build_request(**values)

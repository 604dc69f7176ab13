"""A trained model registers at once: trained from the CLI and from the DreamBooth tab, it is listed with
its trigger words and generates through the registry, /txt2img and /adapter; an export loads back."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dreambooth_support import heart_images
from PIL import Image
from safetensors.torch import load_file

from pipelines import GenerationRequest
from pipelines.requests import InvalidRequest
from pipelines.shapes.render import shape_geometry, sketch_map
from pipelines.shapes.world import Scene

TRAIN = ["--model", "shapes", "--instance-prompt", "a sks shape", "--steps", "3", "--checkpoint-every", "2",
         "--resolution", "64", "--learning-rate", "1e-3", "--no-prior-preservation", "--batch-size", "1",
         "--lora-rank", "4"]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """A models folder holding a full fine-tune and a LoRA trained by the CLI, a registry and a live app."""
    from gradio_client import Client

    from pipelines import PipelineRegistry
    from studio.cli import main
    from studio.ui import build_demo

    root = tmp_path_factory.mktemp("dreambooth_studio")
    models, hearts = root / "models", heart_images(root / "hearts")
    models.mkdir()
    common = TRAIN + ["--images", str(hearts), "--models-dir", str(models)]
    assert main(["train-dreambooth", *common, "--full", "--out", str(models / "hearts-full")]) == 0
    assert main(["train-dreambooth", *common, "--out", str(models / "hearts-lora")]) == 0
    registry = PipelineRegistry(models_dir=models, outputs_dir=root / "outputs", device="cpu", dtype="float32")
    demo = build_demo(registry)
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True)
    try:
        yield registry, Client(url, verbose=False), root
    finally:
        demo.close()


def test_trained_models_are_listed_with_their_trigger_words(studio):
    registry, _, _ = studio
    assert {"hearts-full", "hearts-full/checkpoint-2"} <= set(registry.model_names())
    full = registry.model_info("hearts-full")
    assert full.family == "shapes" and full.trigger_words == ("a sks shape",)
    assert "hearts-lora" in registry.lora_names()
    lora = registry.lora_info("hearts-lora")
    assert lora.base == "shapes" and lora.trigger_words == ("a sks shape",)


def test_the_pickers_show_the_trigger_words(studio):
    from studio.widgets import lora_choices, model_choices

    registry, _, _ = studio
    models = dict((key, label) for label, key in model_choices(registry))
    assert models["hearts-full"] == "hearts-full · trigger: a sks shape"
    assert models["shapes"] == "shapes"  # a base model has none
    loras = dict((key, label) for label, key in lora_choices(registry))
    assert loras["hearts-lora"] == "hearts-lora (for shapes) · trigger: a sks shape"


def test_they_generate_through_the_registry(studio):
    registry, _, _ = studio
    request = GenerationRequest(prompt="a sks shape", model="shapes", steps=3, width=64, height=64, seed=5)
    base = np.asarray(registry.generate(request).images[0], dtype=np.int16)
    for changed in (request.with_(model="hearts-full"), request.with_(model="hearts-full/checkpoint-2"),
                    request.with_(loras=[("hearts-lora", 1.0)])):
        image = np.asarray(registry.generate(changed).images[0], dtype=np.int16)
        assert image.shape == base.shape and np.abs(image - base).max() > 0  # trained weights were used
    assert np.array_equal(np.asarray(registry.generate(request).images[0], dtype=np.int16), base)


def test_the_trained_model_generates_through_txt2img_and_adapter(studio):
    from gradio_client import handle_file

    _, client, root = studio
    images, info = client.predict(prompt="a sks shape", model="hearts-full", steps=3, width=64, height=64, seed=2,
                                  api_name="/txt2img")
    assert len(images) == 1 and info["request"]["model"] == "hearts-full"
    scene = Scene("circle", "red", "white", "large", "center")
    sketch_map(scene, shape_geometry(scene)).save(root / "sketch.png")
    images, maps, info = client.predict(prompt="a sks shape", model="hearts-full", steps=3, width=64, height=64,
                                        seed=2, kind="sketch", image=handle_file(str(root / "sketch.png")),
                                        api_name="/adapter")
    assert len(images) == 1 and len(maps) == 1 and info["request"]["model"] == "hearts-full"
    assert Image.open(images[0]["image"]).size == (64, 64)
    common = dict(prompt="a sks shape", steps=3, width=64, height=64, seed=2, kind="sketch",
                  image=handle_file(str(root / "sketch.png")), api_name="/adapter")
    plain, _, _ = client.predict(**common)
    with_lora, _, lora_info = client.predict(**common, loras=["hearts-lora:1"])
    assert lora_info["request"]["loras"] == [["hearts-lora", 1.0]]
    pixels = lambda images: np.asarray(Image.open(images[0]["image"]).convert("RGB"), dtype=np.int16)  # noqa: E731
    assert np.abs(pixels(with_lora) - pixels(plain)).max() > 0  # the LoRA reached the adapter pipeline


def test_the_dreambooth_tab_trains_and_registers(studio):
    from studio.tabs.dreambooth import train_handler

    registry, _, root = studio
    files = sorted(str(p) for p in (root / "hearts").iterdir())
    updates = list(train_handler(registry, model="shapes", files=files, instance_prompt="a sks shape", class_prompt="",
                          prior=False, num_class_images=1, method="lora", steps=2, learning_rate=1e-3,
                          resolution=64, seed=1, checkpoint_every=1, name="tab-lora", batch_size=2, lora_rank=2))
    losses = updates[-1][1]
    assert list(losses["step"]) == [1, 2]
    assert updates[-1][2]["trigger_words"] == ["a sks shape"]
    assert "tab-lora" in registry.lora_names()  # registered as soon as it finished
    weights = load_file(str(Path(updates[-1][2]["out"]) / "pytorch_lora_weights.safetensors"))
    assert {w.shape[0] for k, w in weights.items() if "lora_A" in k} == {2}  # the rank widget reached training


def test_the_tabs_prior_target_reaches_the_config_and_a_bad_one_is_named(studio):
    from studio.tabs.dreambooth import PRIOR_TARGET_CHOICES, make_config

    registry, _, root = studio
    files = sorted(str(p) for p in (root / "hearts").iterdir())
    values = dict(model="shapes", files=files, instance_prompt="a sks shape", class_prompt="a shape", prior=True,
                  num_class_images=2, method="lora", steps=2, learning_rate=0, resolution=0, seed=0,
                  checkpoint_every=1, name="tab-prior", batch_size=1, lora_rank=2)
    assert [value for _, value in PRIOR_TARGET_CHOICES] == ["images", "model"]
    assert make_config(registry, **values, prior_target="model").prior_target == "model"
    with pytest.raises(InvalidRequest, match="prior_target"):
        make_config(registry, **values, prior_target="teacher")


def test_export_of_the_trained_folder_loads_as_a_single_file(studio):
    from studio.cli import main

    registry, _, root = studio
    target = root / "models" / "hearts-full-export.safetensors"
    assert main(["export", "--model", "hearts-full", "--out", str(target), "--dtype", "fp32",
                 "--models-dir", str(root / "models")]) == 0
    registry.refresh()
    spec = registry.model_info("hearts-full-export")
    assert spec.format == "single_file" and spec.trigger_words == ("a sks shape",)
    request = GenerationRequest(prompt="a sks shape", model="hearts-full", steps=3, width=64, height=64, seed=9)
    folder = registry.generate(request).images[0]
    single = registry.generate(request.with_(model="hearts-full-export")).images[0]
    assert np.array_equal(np.asarray(folder), np.asarray(single))

"""Image to Image, Inpaint and the hires fix everywhere: the tabs' size controls follow the chosen model (every
tab), send-to between tabs and from PNG Info, the `/img2img` and `/inpaint` endpoints and hires `/txt2img`
parameters through gradio_client, the CLI flags, and one copy of the weights for every mode."""
from __future__ import annotations

import socket

import gradio as gr
import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from pipelines import GenerationRequest
from pipelines.metadata import read_settings
from pipelines.shapes.judge import read
from pipelines.shapes.render import render
from pipelines.shapes.world import Scene
from studio.cli import main
from studio.ui import build_demo, launch_options

PROMPT = "a large blue circle in the center on a white background"


def red_circle() -> Image.Image:
    return render(Scene("circle", "red", "white", "large", "center"))


@pytest.fixture(scope="module")
def demo(registry):
    return build_demo(registry)


def width_handlers(demo) -> list:
    """Every event that updates the Width slider when the model picker changes (model, width, height in)."""
    return [fn for fn in demo.fns.values()
            if [getattr(component, "label", None) for component in fn.inputs] == ["Model", "Width", "Height"]
            and any(isinstance(out, gr.Slider) and out.label == "Width" for out in fn.outputs)]


def test_switching_models_keeps_valid_sizes_on_every_tab(demo):
    handlers = width_handlers(demo)
    tabs = {fn.outputs[0]._id for fn in handlers}
    assert len(handlers) == len(tabs) == 4  # Text to Image, Image to Image, Inpaint, Adapters
    for fn in handlers:
        to_sdxl = fn.fn("sdxl", 128, 128)
        assert (to_sdxl[0].minimum, to_sdxl[0].maximum, to_sdxl[0].value, to_sdxl[1].value) == (512, 2048, 1024, 1024)
        back = fn.fn("shapes", 1024, 1024)
        assert (back[0].minimum, back[0].maximum, back[0].value, back[1].value) == (64, 256, 128, 128)
        kept = fn.fn("sd15", 512, 768)  # a size the model takes is kept (settings sent from PNG Info survive)
        assert (kept[0].minimum, kept[0].value, kept[1].value) == (256, 512, 768)


def senders(demo) -> dict:
    """One Send-to handler per receiving tab (studio.send_to: each takes the chosen result's payload)."""
    return {fn.name.removeprefix("send_to_"): fn for fn in demo.fns.values()
            if fn.name.startswith("send_to_") and len(fn.inputs) == 1}


def received(fn, payload) -> tuple[str, dict]:
    updates = fn.fn(payload)
    tab = next(value for component, value in updates.items() if isinstance(component, gr.Tabs)).selected
    return tab, {getattr(component, "label", None): value for component, value in updates.items()}


def test_generated_pictures_are_sent_to_every_other_tab(demo, registry):
    result = registry.generate(GenerationRequest(prompt=PROMPT, seed=11, steps=4, scheduler="DDIM"))
    payload = {"image": result.paths[0], "settings": read_settings(result.paths[0]).fields}
    targets = dict(received(fn, payload) for name, fn in senders(demo).items())
    assert {"txt2img", "img2img", "inpaint", "adapters"} <= set(targets)
    for tab in ("txt2img", "img2img", "inpaint", "adapters"):
        assert targets[tab]["Prompt"] == PROMPT and targets[tab]["Sampler (scheduler)"] == "DDIM", tab
    sent = targets["img2img"]["Picture"]
    assert np.array_equal(np.asarray(sent), np.asarray(result.images[0]))
    assert targets["inpaint"]["Picture: brush over the area to repaint"]["background"].size == (128, 128)
    assert targets["adapters"]["Picture"] == "Upload"


def test_png_info_sends_the_picture_and_its_settings(demo, registry):
    """What PNG Info read (its payload: the file and the settings found in it) fills the picture tabs."""
    result = registry.generate(GenerationRequest(prompt=PROMPT, seed=12, steps=3, init_image=red_circle(),
                                                 denoising_strength=0.55))
    payload = {"image": result.paths[0], "settings": read_settings(result.paths[0]).fields}
    got = {tab: values for tab, values in (received(fn, payload) for fn in senders(demo).values())}
    for tab in ("img2img", "inpaint"):
        assert got[tab]["Prompt"] == PROMPT and got[tab]["Seed"] == 12 and got[tab]["Denoising strength"] == 0.55
    assert np.array_equal(np.asarray(got["img2img"]["Picture"]), np.asarray(result.images[0]))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def client(registry, demo, tmp_path_factory):
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True,
                            **launch_options(registry))
    yield Client(url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))
    demo.close()


def test_img2img_and_inpaint_endpoints(client, tmp_path):
    source = tmp_path / "red.png"
    red_circle().save(source)
    images, info = client.predict(prompt=PROMPT, image=handle_file(str(source)), denoising_strength=0.6, seed=3,
                                  api_name="/img2img")
    assert info["seeds"] == [3] and "Denoising strength: 0.6" in info["parameters"][0]
    assert Image.open(images[0]["image"]).size == (128, 128)  # the picture's own size
    assert read(Image.open(images[0]["image"])).color == "blue"
    mask = tmp_path / "mask.png"
    canvas = Image.new("L", (128, 128), 0)
    canvas.paste(255, (32, 32, 96, 96))
    canvas.save(mask)
    images, info = client.predict(prompt=PROMPT, image=handle_file(str(source)), mask=handle_file(str(mask)),
                                  seed=4, steps=6, api_name="/inpaint")
    assert "Mask blur: 4, Inpaint area: Whole picture, Masked content: original" in info["parameters"][0]
    out = np.asarray(Image.open(images[0]["image"]).convert("RGB"))
    keep = np.ones((128, 128), dtype=bool)
    keep[20:108, 20:108] = False
    assert np.array_equal(out[keep], np.asarray(red_circle())[keep])
    images, info = client.predict(prompt=PROMPT, image=handle_file(str(source)), outpaint_pixels=16,
                                  outpaint_directions=["left"], seed=5, steps=4, api_name="/inpaint")
    assert Image.open(images[0]["image"]).size == (144, 128) and "Masked content: fill" in info["parameters"][0]


def test_txt2img_takes_the_hires_fix_last(client):
    images, info = client.predict(prompt=PROMPT, negative_prompt="", model="shapes", scheduler="Euler", steps=4,
                                  guidance_scale=7, width=64, height=64, seed=1, num_images=1, hires_scale=2,
                                  hires_steps=3, hires_upscaler="Lanczos", hires_denoising=0.5, api_name="/txt2img")
    assert Image.open(images[0]["image"]).size == (128, 128)
    assert "Hires upscale: 2, Hires steps: 3, Hires upscaler: Lanczos, Denoising strength: 0.5" in \
        info["parameters"][0]


def test_the_cli_takes_the_mode_flags(tmp_path, capsys):
    red_circle().save(tmp_path / "red.png")
    mask = Image.new("L", (128, 128), 0)
    mask.paste(255, (40, 40, 88, 88))
    mask.save(tmp_path / "mask.png")
    common = ["--seed", "2", "--steps", "4", "--out", str(tmp_path / "out"), "--models-dir", str(tmp_path / "m")]
    runs = [["--init-image", str(tmp_path / "red.png"), "--denoising-strength", "0.5", "--resize-mode",
             "Crop and resize", "--width", "96"],
            ["--init-image", str(tmp_path / "red.png"), "--mask", str(tmp_path / "mask.png"), "--mask-blur", "2",
             "--inpaint-area", "Only masked", "--masked-content", "fill"],
            ["--init-image", str(tmp_path / "red.png"), "--outpaint", "16", "--outpaint-side", "up"],
            ["--hires-scale", "1.5", "--hires-steps", "2", "--hires-upscaler", "Latent (nearest)", "--width", "64",
             "--height", "64"]]
    sizes = []
    for flags in runs:
        assert main(["generate", "--prompt", PROMPT, *flags, *common]) == 0
        path = capsys.readouterr().out.strip().splitlines()[-1]
        sizes.append(Image.open(path).size)
        text = Image.open(path).info["parameters"]
        assert ("Hires upscale: 1.5" in text) == ("--hires-scale" in flags)
    assert sizes == [(96, 128), (128, 128), (128, 144), (96, 96)]
    assert main(["generate", "--prompt", PROMPT, "--mask", str(tmp_path / "mask.png"), *common]) == 2
    assert "mask: --mask needs --init-image" in capsys.readouterr().err


def test_every_mode_shares_one_copy_of_the_weights(fresh_registry):
    picture, mask = red_circle().resize((64, 64)), Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    base = GenerationRequest(prompt=PROMPT, width=64, height=64, steps=2, seed=1)
    unets = set()
    for changes in ({}, {"init_image": picture, "denoising_strength": 0.5},
                    {"init_image": picture, "mask": mask, "scheduler": "DDIM"},
                    {"init_image": picture, "outpaint_pixels": 8, "outpaint_directions": ("left",)},
                    {"hires_scale": 1.5, "hires_upscaler": "Lanczos"}):
        fresh_registry.generate(base.with_(**changes))
        unets.add(id(fresh_registry.load("shapes").components["unet"]))
    assert len(unets) == 1 and list(fresh_registry.load_counts.values()) == [1]


def test_the_new_modes_share_the_device_queue(registry):
    demo = build_demo(registry, concurrency_limit=2)
    names = ("img2img", "img2img_live", "inpaint", "inpaint_live", "txt2img")
    generating = [fn for fn in demo.fns.values() if fn.api_name in names]
    assert len(generating) == len(names)
    assert {(fn.concurrency_id, fn.concurrency_limit) for fn in generating} == {("generation", 2)}

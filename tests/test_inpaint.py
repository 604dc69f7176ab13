"""Inpainting and outpainting: on the bundled model a yellow star drawn where a shape was, every pixel outside
the blurred mask kept, outpainting keeping the picture; and 9-channel inpainting checkpoints (a tiny random
one here) load from a folder or a single file and read their mask and masked picture in diffusers' layout."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from PIL import Image

from dreambooth_support import config_only_folder, pipeline_from, tiny_components
from pipelines import GenerationRequest, InvalidRequest
from pipelines.shapes.judge import read
from pipelines.shapes.render import render, shape_geometry
from pipelines.shapes.world import COLORS, Scene

BLUR = 4
REACH = int(2.5 * BLUR + 0.5) + 1  # how far past the mask the blurred mask (and so any change) may reach


def outside(box, margin: int, size: int = 128) -> np.ndarray:
    x1, y1, x2, y2 = box
    keep = np.ones((size, size), dtype=bool)
    keep[max(0, y1 - margin):y2 + margin, max(0, x1 - margin):x2 + margin] = False
    return keep


def star_cases(count: int):
    """Scenes with one small shape, and the square around it to repaint as a small yellow star."""
    rng = random.Random(3)
    for k in range(count):
        background = rng.choice(["white", "blue", "green", "black", "gray", "purple"])
        colour = rng.choice([c for c in COLORS if c not in (background, "yellow")])
        scene = Scene(rng.choice(["circle", "square", "triangle"]), colour, background, "small",
                      rng.choice(["top left", "top right", "bottom left", "bottom right"]))
        cx, cy, _ = shape_geometry(scene)
        box = (int(cx - 28), int(cy - 28), int(cx + 28), int(cy + 28))
        yield k, scene, box, f"a small yellow star at the {scene.position} on a {background} background"


@pytest.mark.parametrize("area, cases", [("Whole picture", 12), ("Only masked", 4)])
def test_a_star_is_painted_in_and_everything_else_is_kept(registry, area, cases):
    stars = 0
    for k, scene, box, prompt in star_cases(cases):
        original = render(scene)
        mask = Image.new("L", original.size, 0)
        mask.paste(255, box)
        result = registry.generate(GenerationRequest(prompt=prompt, seed=k, init_image=original, mask=mask,
                                                     mask_blur=BLUR, denoising_strength=1.0,
                                                     masked_content="latent noise", inpaint_area=area))
        image = result.images[0]
        assert image.size == original.size
        kept = outside(box, REACH)
        assert np.array_equal(np.asarray(image)[kept], np.asarray(original)[kept]), f"case {k}: pixels changed"
        reading = read(image)
        stars += (reading.shape, reading.color) == ("star", "yellow")
    assert stars >= 0.75 * cases, f"{stars} stars in {cases}"


def test_outpainting_keeps_the_picture_and_continues_its_background(registry):
    backgrounds = 0
    for k, (colour, background) in enumerate([("red", "blue"), ("white", "green"), ("black", "yellow"),
                                              ("green", "white")]):
        original = render(Scene("circle", colour, background, "small", "center"))
        result = registry.generate(GenerationRequest(
            prompt=f"a small {colour} circle on a {background} background", seed=k, init_image=original,
            outpaint_pixels=32, outpaint_directions=("right", "down"), denoising_strength=0.8))
        image = np.asarray(result.images[0])
        assert image.shape == (160, 160, 3)
        assert np.array_equal(image[:128, :128], np.asarray(original))
        new_area = np.concatenate([image[:, 136:].reshape(-1, 3), image[136:, :128].reshape(-1, 3)])
        palette = {name: np.array(rgb) for name, rgb in COLORS.items()}
        nearest = min(palette, key=lambda name: np.abs(np.median(new_area, axis=0) - palette[name]).sum())
        backgrounds += nearest == background
    assert backgrounds >= 3


def test_mode_settings_out_of_place_are_refused(registry):
    base = GenerationRequest(prompt="a red circle", width=64, height=64)
    picture = render(Scene("circle", "red", "white", "large", "center"))
    empty = Image.new("L", (128, 128), 0)
    for changes, field, hint in [
        ({"mask_blur": 4}, "mask_blur", "only for inpainting"),
        ({"denoising_strength": 0.5}, "denoising_strength", "init_image"),
        ({"init_image": picture, "denoising_strength": 1.5}, "denoising_strength", "from 0 to 1"),
        ({"init_image": picture, "mask": empty}, "mask", "empty"),
        ({"init_image": picture, "mask": picture, "masked_content": "noise"}, "masked_content", "latent noise"),
        ({"init_image": picture, "outpaint_pixels": 12, "outpaint_directions": ("left",)}, "outpaint_pixels",
         "multiple of 8"),
        ({"init_image": picture, "outpaint_pixels": 256, "outpaint_directions": ("left",)}, "outpaint_pixels",
         "from 64 to 256"),
        ({"init_image": picture, "outpaint_pixels": 16}, "outpaint_pixels", "at least one side"),
        ({"init_image": picture, "resize_mode": "Stretch"}, "resize_mode", "Crop and resize"),
        ({"hires_scale": 2.0, "init_image": picture}, "hires_scale", "text to image"),
        ({"hires_scale": 5.0}, "hires_scale", "from 1 to 4"),
        ({"hires_scale": 2.0, "hires_upscaler": "ESRGAN"}, "hires_upscaler", "Latent"),
        ({"hires_scale": 2.0, "width": 192, "height": 192}, "hires_scale", "384x384"),
    ]:
        with pytest.raises(InvalidRequest) as caught:
            registry.generate(base.with_(**changes))
        assert caught.value.field == field and hint in str(caught.value), changes


# ---- 9-channel inpainting checkpoints -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def inpainting_components():
    from diffusers import AutoencoderKL, UNet2DConditionModel

    components = tiny_components("sd1", seed=3)
    torch.manual_seed(4)
    components["unet"] = UNet2DConditionModel.from_config(components["unet"].config, in_channels=9).eval()
    # 8x down, as SD's VAE: SD 1.x sizes start at 256, and a 2x VAE would give the UNet 128x128 latents
    components["vae"] = AutoencoderKL(block_out_channels=(8, 8, 16, 16), layers_per_block=1, norm_num_groups=8,
                                      down_block_types=("DownEncoderBlock2D",) * 4,
                                      up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4).eval()
    return components


def test_an_inpainting_single_file_is_recognised_and_loads(inpainting_components, tmp_path):
    from pipelines.checkpoints.export import export_components
    from pipelines.checkpoints.single_file import _header, detect_family, load_single_file, unet_in_channels
    from pipelines.families import FAMILIES

    path = export_components(inpainting_components, tmp_path / "tiny-inpainting.safetensors", dtype="fp32")
    assert detect_family(path) == "sd1" and unet_in_channels(_header(path, False)) == 9
    assert FAMILIES["sd1"].single_file_config(9).name == "sd1-inpainting"
    loaded = load_single_file(path, config_dir=config_only_folder(inpainting_components, tmp_path / "config"),
                              dtype=torch.float32)
    ours, theirs = inpainting_components["unet"].state_dict(), loaded["unet"].state_dict()
    assert loaded["unet"].config.in_channels == 9 and all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_the_shipped_inpainting_configs_describe_the_real_models():
    """Each family's inpainting UNet is its text-to-image UNet with conv_in reading 9 channels: 5 more, times
    320 filters of 3x3 (SD 1.5 inpainting: 859.54M parameters)."""
    from accelerate import init_empty_weights
    from diffusers import UNet2DConditionModel

    from pipelines.families import FAMILIES

    for key in ("sd1", "sd2", "sdxl"):
        family = FAMILIES[key]
        with init_empty_weights():
            plain = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(str(family.config_dir / "unet")))
            inpainting = UNet2DConditionModel.from_config(
                UNet2DConditionModel.load_config(str(family.inpaint_config_dir / "unet")))
        count = lambda model: sum(p.numel() for p in model.parameters())  # noqa: E731
        assert inpainting.config.in_channels == 9 and count(inpainting) - count(plain) == 5 * 320 * 3 * 3, key
    assert json.loads((FAMILIES["sd2"].inpaint_config_dir / "scheduler" / "scheduler_config.json").read_text())[
        "prediction_type"] == "epsilon"


@pytest.fixture(scope="module")
def inpainting_registry(inpainting_components, tmp_path_factory):
    from pipelines import PipelineRegistry

    models = tmp_path_factory.mktemp("models")
    folder = models / "tiny-inpainting"
    pipeline_from(inpainting_components).save_pretrained(str(folder))
    (folder / "studio.json").write_text(json.dumps({"family": "sd1"}))  # its 32-wide text: no family says so
    unknown = models / "tiny-unknown"
    pipeline_from(tiny_components("sd1", seed=5)).save_pretrained(str(unknown))
    return PipelineRegistry(models_dir=models, outputs_dir=tmp_path_factory.mktemp("out"), device="cpu",
                            dtype="float32", save_outputs=False)


def test_an_unknown_family_is_refused_and_a_sidecar_names_it(inpainting_registry):
    assert "tiny-inpainting" in inpainting_registry.model_names()
    assert "tiny-unknown" not in inpainting_registry.model_names()
    with pytest.raises(InvalidRequest, match="no model family here has") as caught:
        inpainting_registry.model_info(str(inpainting_registry.models_dir / "tiny-unknown"))
    assert caught.value.field == "model" and '{"family": KEY}' in str(caught.value)


def test_an_inpainting_unet_reads_mask_and_masked_picture_as_diffusers_lays_them_out(inpainting_registry):
    from diffusers import StableDiffusionInpaintPipeline

    loaded = inpainting_registry.load("tiny-inpainting")
    unet = loaded.components["unet"]
    seen = []
    hook = unet.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    picture = Image.fromarray((np.random.default_rng(0).random((256, 256, 3)) * 255).astype(np.uint8))
    mask = Image.new("L", (256, 256), 0)
    mask.paste(255, (64, 96, 160, 192))  # on the latent grid, so every convention agrees on its edge
    try:
        result = inpainting_registry.generate(GenerationRequest(
            prompt="a red circle", model="tiny-inpainting", width=256, height=256, steps=2, seed=1,
            init_image=picture, mask=mask, mask_blur=0, denoising_strength=0.8, scheduler="DDIM"))
        text_only = inpainting_registry.generate(GenerationRequest(prompt="a red circle", model="tiny-inpainting",
                                                                   width=256, height=256, steps=1, seed=1))
    finally:
        hook.remove()
    assert result.images[0].size == (256, 256) and text_only.images[0].size == (256, 256)
    sample = seen[0]
    assert sample.shape[1] == 9
    c = loaded.components
    pipe = StableDiffusionInpaintPipeline(vae=c["vae"], text_encoder=c["text_encoder"], tokenizer=c["tokenizer"],
                                          unet=unet, scheduler=c["scheduler"], safety_checker=None,
                                          feature_extractor=None, requires_safety_checker=False)
    image = pipe.image_processor.preprocess(picture, height=256, width=256)
    mask_tensor = pipe.mask_processor.preprocess(mask, height=256, width=256)
    with torch.inference_mode():
        masked = c["vae"].encode(image * (mask_tensor < 0.5)).latent_dist.mode() * c["vae"].config.scaling_factor
    small_mask = torch.nn.functional.interpolate(mask_tensor, size=masked.shape[-2:])
    for branch in sample.chunk(2):  # unconditional and conditional halves get the same channels
        assert torch.equal(branch[:, 4:5], small_mask)
        assert torch.allclose(branch[:, 5:], masked, atol=1e-5)
    keep = np.ones((256, 256), dtype=bool)
    keep[96:192, 64:160] = False
    assert np.array_equal(np.asarray(result.images[0])[keep], np.asarray(picture)[keep])
    full = seen[-1]  # text to image: masked all over (mask 1, a grey picture), as A1111 conditions it
    assert torch.equal(full[:, 4:5], torch.ones_like(full[:, 4:5]))

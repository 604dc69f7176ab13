"""Image to image and inpainting compute what AUTOMATIC1111 computes for the k-diffusion samplers (k-diffusion's
own sampling.py, A1111's img2img step arithmetic, CFGDenoiser mask blend and overlay, written out here) and
what diffusers' StableDiffusionImg2ImgPipeline computes for the diffusers-form ones; strength 0 returns the
picture; and on the bundled model a red circle with "a blue circle" at 0.6 turns blue where it stood."""
from __future__ import annotations

import random

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

import kdiffusion_reference
from pipelines import GenerationRequest
from pipelines.metadata import read_settings
from pipelines.shapes.judge import read
from pipelines.shapes.render import render
from pipelines.shapes.world import POSITIONS, Scene, caption
from test_a1111_samplers import A1111_SAMPLERS, HijackedTorch, a1111_schedule, psnr

PROMPT, NEGATIVE = "a large blue circle in the top left on a white background", "blurry"
SEED, STEPS, SIZE, CFG = 5, 6, 64, 7.0
pytestmark = pytest.mark.filterwarnings("ignore:Should have t[ab]:UserWarning")


def picture() -> Image.Image:
    return render(Scene("circle", "red", "white", "large", "top left")).resize((SIZE, SIZE), Image.LANCZOS)


def repaint_mask() -> Image.Image:
    mask = Image.new("L", (SIZE, SIZE), 0)
    mask.paste(255, (8, 8, 40, 40))
    return mask


@pytest.fixture(scope="module")
def reference(request, registry):
    sampling, external = kdiffusion_reference.load(request.config.cache.mkdir("k_diffusion"))
    loaded = registry.load("shapes")
    cond, uncond = kdiffusion_reference.diffusers_prompt_embeds(loaded, PROMPT, NEGATIVE)
    return sampling, kdiffusion_reference.compvis_denoiser(external, loaded), cond, uncond, loaded


def init_latent(vae, image: Image.Image, generator) -> torch.Tensor:
    """The studio's convention for the init latent (the VAE's sample, drawn with the image's generator after
    its starting noise), written against diffusers' VAE directly."""
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0 * 2 - 1).permute(2, 0, 1)[None]
    with torch.inference_mode():
        return vae.encode(pixels).latent_dist.sample(generator) * vae.config.scaling_factor


def a1111_blur(mask: Image.Image, blur: int) -> Image.Image:
    """modules/processing.py: a Gaussian of sigma `blur`, kernel 2 * int(2.5 * blur + 0.5) + 1, x then y."""
    pixels = np.array(mask)
    kernel = 2 * int(2.5 * blur + 0.5) + 1
    pixels = cv2.GaussianBlur(pixels, (kernel, 1), blur)
    return Image.fromarray(cv2.GaussianBlur(pixels, (1, kernel), blur))


def a1111_run(reference, sampler, image, strength, mask=None, blur=4):
    """A1111 1.10's img2img for one image: setup_img2img_steps, sample_img2img, CFGDenoiser (with the mask
    blend), the final blend, the decode and, for a mask, apply_overlay."""
    sampling, model_wrap, cond, uncond, loaded = reference
    function, options = A1111_SAMPLERS[sampler]
    steps, t_enc = STEPS, int(min(strength, 0.999) * STEPS)
    n = steps + 1 if options.get("discard") else steps
    sigmas = a1111_schedule(options.get("scheduler", "Uniform"), n, model_wrap, sampling)
    if options.get("discard"):
        sigmas = torch.cat([sigmas[:-2], sigmas[-1:]])
    sigma_sched = sigmas[steps - t_enc - 1:]
    generator = torch.Generator().manual_seed(SEED)
    noise = torch.randn((1, 4, SIZE // 8, SIZE // 8), generator=generator)
    vae = loaded.components["vae"]
    x = init_latent(vae, image, generator)
    keep = None
    if mask is not None:
        image_mask = a1111_blur(mask, blur)
        latmask = np.array(image_mask.convert("RGB").resize((SIZE // 8, SIZE // 8)), dtype=np.float32)
        latmask = torch.from_numpy(np.around(np.moveaxis(latmask, 2, 0)[0] / 255))
        keep, repaint = 1.0 - latmask, latmask

    def cfg_denoiser(xi, sigma, **_):
        out = model_wrap(torch.cat([xi, xi]), torch.cat([sigma, sigma]), cond=torch.cat([cond, uncond]))
        c, u = out.chunk(2)
        denoised = u + (c - u) * CFG
        return denoised if keep is None else x * keep + repaint * denoised

    kwargs = {}
    if options.get("brownian"):
        kwargs["noise_sampler"] = sampling.BrownianTreeNoiseSampler(x, sigmas[sigmas > 0].min(), sigmas.max(),
                                                                    seed=[SEED])
    sampling.torch = HijackedTorch(generator)
    try:
        with torch.inference_mode():
            samples = getattr(sampling, function)(cfg_denoiser, x + noise * sigma_sched[0], sigma_sched,
                                                  extra_args={}, disable=True, **kwargs)
    finally:
        sampling.torch = torch
    if keep is not None:
        samples = samples * repaint + x * keep
    with torch.inference_mode():
        decoded = vae.decode(samples / vae.config.scaling_factor).sample
    out = Image.fromarray(((decoded[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy())
    if mask is None:
        return out
    for_overlay = Image.fromarray(np.clip(np.array(image_mask).astype(np.float32) * 2, 0, 255).astype(np.uint8))
    overlay = Image.new("RGBa", image.size)
    overlay.paste(image.convert("RGBA").convert("RGBa"), mask=ImageOps.invert(for_overlay))
    out = out.convert("RGBA")
    out.alpha_composite(overlay.convert("RGBA"))
    return out.convert("RGB")


def studio(registry, sampler, strength, mask=None, **extra):
    return registry.generate(GenerationRequest(prompt=PROMPT, negative_prompt=NEGATIVE, scheduler=sampler,
                                               steps=STEPS, guidance_scale=CFG, width=SIZE, height=SIZE, seed=SEED,
                                               init_image=picture(), denoising_strength=strength, mask=mask,
                                               **extra))


@pytest.mark.parametrize("sampler", ["Euler a", "DPM++ 2M", "DPM++ SDE", "DPM2", "Heun"])
def test_image_to_image_matches_a1111(reference, registry, sampler):
    expected = a1111_run(reference, sampler, picture(), 0.6)
    assert psnr(studio(registry, sampler, 0.6).images[0], expected) >= 45


@pytest.mark.parametrize("sampler", ["Euler a", "DPM++ 2M SDE"])
def test_inpainting_with_an_ordinary_checkpoint_matches_a1111(reference, registry, sampler):
    expected = a1111_run(reference, sampler, picture(), 0.75, mask=repaint_mask(), blur=4)
    result = studio(registry, sampler, 0.75, mask=repaint_mask(), mask_blur=4, masked_content="original")
    assert psnr(result.images[0], expected) >= 45


@pytest.mark.parametrize("sampler", ["DDIM", "UniPC", "PLMS", "DEIS"])
def test_diffusers_form_samplers_match_diffusers_img2img(registry, sampler):
    from diffusers import StableDiffusionImg2ImgPipeline

    from pipelines.schedulers import build_scheduler

    loaded = registry.load("shapes")
    c = loaded.components
    pipe = StableDiffusionImg2ImgPipeline(vae=c["vae"], text_encoder=c["text_encoder"], tokenizer=c["tokenizer"],
                                          unet=c["unet"], scheduler=build_scheduler(sampler, loaded.base_scheduler_config),
                                          safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator().manual_seed(SEED)
    torch.randn((1, 4, SIZE // 8, SIZE // 8), generator=generator)  # the starting noise comes first
    latents = init_latent(c["vae"], picture(), generator)
    with torch.inference_mode():
        expected = pipe(PROMPT, image=latents, strength=0.6, num_inference_steps=STEPS, guidance_scale=CFG,
                        negative_prompt=NEGATIVE, generator=torch.Generator().manual_seed(SEED)).images[0]
    updates = []
    result = registry.generate(GenerationRequest(prompt=PROMPT, negative_prompt=NEGATIVE, scheduler=sampler,
                                                 steps=STEPS, guidance_scale=CFG, width=SIZE, height=SIZE,
                                                 seed=SEED, init_image=picture(), denoising_strength=0.6),
                               on_step=updates.append)
    assert psnr(result.images[0], expected) >= 45
    assert updates[-1].total == int(STEPS * 0.6)  # diffusers' count: the last int(N * d) timesteps


def test_steps_are_counted_as_a1111_counts_them(registry):
    updates = []
    registry.generate(GenerationRequest(prompt=PROMPT, steps=20, width=SIZE, height=SIZE, seed=1, num_images=2,
                                        init_image=picture(), denoising_strength=0.6), on_step=updates.append)
    assert [u.step for u in updates] == list(range(1, 27)) and {u.total for u in updates} == {26}  # 13 each


def test_strength_zero_returns_the_picture_itself(registry):
    original = picture()
    result = registry.generate(GenerationRequest(prompt=PROMPT, width=SIZE, height=SIZE, seed=1, num_images=2,
                                                 init_image=original, denoising_strength=0.0))
    assert all(np.array_equal(np.asarray(image), np.asarray(original)) for image in result.images)
    resized = registry.generate(GenerationRequest(prompt=PROMPT, width=96, height=64, init_image=original,
                                                  denoising_strength=0.0, resize_mode="Crop and resize"))
    assert resized.images[0].size == (96, 64)
    masked = registry.generate(GenerationRequest(prompt=PROMPT, width=SIZE, height=SIZE, init_image=original,
                                                 mask=repaint_mask(), denoising_strength=0.0))
    assert np.array_equal(np.asarray(masked.images[0]), np.asarray(original))


def test_settings_are_written_as_a1111_writes_them_and_read_back(registry):
    result = studio(registry, "Euler a", 0.6)
    settings = read_settings(result.paths[0]).fields
    assert settings["denoising_strength"] == 0.6 and settings["resize_mode"] == "Just resize"
    assert "Denoising strength: 0.6" in result.items[0].image.info.get("parameters", "") or \
        "Denoising strength: 0.6" in Image.open(result.paths[0]).info["parameters"]
    inpainted = studio(registry, "Euler a", 0.75, mask=repaint_mask(), inpaint_area="Only masked", inpaint_padding=8)
    text = Image.open(inpainted.paths[0]).info["parameters"]
    assert "Mask blur: 4, Inpaint area: Only masked, Masked area padding: 8, Masked content: original" in text
    from pipelines.metadata.a1111 import read_parameters

    fields = read_parameters(text).fields
    assert (fields["mask_blur"], fields["inpaint_area"], fields["masked_content"], fields["inpaint_padding"]) == \
        (4, "Only masked", "original", 8)


# On purple and gray the bundled model draws blue as purple from the text alone too (Text to Image), so those
# backgrounds would measure the model's palette, not image to image.
BACKGROUNDS = ("white", "yellow", "green", "orange", "black")


def test_a_red_circle_turns_blue_where_it_stood(registry):
    rng = random.Random(0)
    cases, kept = 12, 0
    for k in range(cases):
        scene = Scene("circle", "red", rng.choice(BACKGROUNDS), rng.choice(["small", "large"]),
                      rng.choice(sorted(POSITIONS)))
        prompt = caption(Scene("circle", "blue", scene.background, scene.size, scene.position), rng)
        result = registry.generate(GenerationRequest(prompt=prompt, seed=k, init_image=render(scene),
                                                     denoising_strength=0.6))
        reading = read(result.images[0])
        kept += (reading.color, reading.shape, reading.position) == ("blue", "circle", scene.position)
    assert kept >= 0.8 * cases, f"{kept} of {cases}"


def test_loras_and_adapters_work_on_image_to_image(registry, tmp_path):
    from safetensors.torch import save_file

    from dreambooth_support import random_lora_state
    from pipelines import AdapterInput

    lora = tmp_path / "style.safetensors"
    save_file(random_lora_state(registry.load("shapes").components["unet"], scale=0.4), str(lora))
    plain = studio(registry, "Euler", 0.6).images[0]
    styled = studio(registry, "Euler", 0.6, loras=[(str(lora), 1.0)]).images[0]
    assert psnr(plain, styled) < 40  # the LoRA changed the picture
    assert psnr(plain, studio(registry, "Euler", 0.6).images[0]) == float("inf")  # and left the model as it was
    sketch = Image.new("RGB", (SIZE, SIZE))
    from PIL import ImageDraw

    ImageDraw.Draw(sketch).ellipse((8, 8, 40, 40), outline="white", width=2)
    conditioned = studio(registry, "Euler", 0.6, adapters=[AdapterInput("sketch", sketch)])
    assert psnr(plain, conditioned.images[0]) < 40 and len(conditioned.items[0].condition_maps) == 1

"""The studio's own VAE work follows diffusers: float32 for a VAE flagged force_upcast, SDXL-style
latents_mean/std, SD3-style shift_factor, in the decode, the encode (DreamBooth's latents) and the preview fit.

The overflow VAE: a tiny VAE whose decoder input convolution is scaled by 1e5, so its float16 activations
pass 65504 (float16's largest value) and become inf, then NaN after the next normalisation, which is what
SDXL's real VAE does in float16 on some latents. Its float32 decode is finite.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import tiny_models as tm
from pipelines import previews

SCALE = 1e5


def overflowing(vae):
    with torch.no_grad():
        vae.decoder.conv_in.weight.mul_(SCALE)
        vae.decoder.conv_in.bias.mul_(SCALE)
    return vae


@pytest.fixture(scope="module")
def vae32():
    return overflowing(tm.tiny_components("sdxl")["vae"])


@pytest.fixture(scope="module")
def vae16(vae32):
    import copy

    return torch.nn.Module.to(copy.deepcopy(vae32), torch.float16)


@pytest.fixture(scope="module")
def latents():
    return torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))


def test_the_overflow_vae_really_overflows_in_float16(vae16, latents):
    with torch.inference_mode():
        naive = vae16.decode(previews.pipeline_latents_to_vae(vae16, latents.half())).sample
    assert not torch.isfinite(naive).all()


def test_decode_upcasts_a_float16_vae_flagged_force_upcast(vae16, vae32, latents):
    assert vae16.config.force_upcast and previews.decode_needs_upcast(vae16)
    images = previews.decode_tensor(vae16, latents.half())
    reference = previews.decode_tensor(vae32, latents)
    assert images.dtype == torch.float32 and torch.isfinite(images).all()
    # the only difference left is vae16's weights having been rounded to float16
    assert (images - reference).abs().max() < 0.01 and reference.std() > 0.05
    assert next(vae16.parameters()).dtype == torch.float16, "the shared VAE must not be cast"
    pictures = previews.decode(vae16, latents.half())
    assert all(np.asarray(p).std() > 5 for p in pictures)


def test_preview_fit_encodes_in_float32_when_force_upcast(vae16, vae32):
    fitted = previews.fit_linear_preview(vae16)
    assert torch.isfinite(fitted).all()
    assert torch.allclose(fitted, previews.fit_linear_preview(vae32), atol=0.05)


def test_studio_in_float16_draws_the_float32_picture(tmp_path):
    """End to end: a float16 registry with the overflowing VAE gives a finite image, close to float32's."""
    from diffusers import AutoencoderKL

    from pipelines import GenerationRequest, PipelineRegistry

    folder = tm.save_model("sd1", tmp_path / "sd1")
    overflowing(AutoencoderKL.from_pretrained(str(folder / "vae"))).save_pretrained(str(folder / "vae"))
    request = GenerationRequest(prompt="a red circle", model=str(folder), scheduler="DDIM", steps=2,
                                width=256, height=256, seed=5)
    pictures = {}
    for dtype in ("float16", "float32"):
        registry = PipelineRegistry(models_dir=None, device="cpu", dtype=dtype, save_outputs=False)
        pictures[dtype] = np.asarray(registry.generate(request).images[0]).astype(int)
    assert pictures["float16"].std() > 5
    assert np.abs(pictures["float16"] - pictures["float32"]).mean() < 2


def test_encode_matches_diffusers_img2img_latents():
    """DreamBooth's latent distribution, sampled with diffusers' noise, is diffusers' SDXL img2img latent."""
    from diffusers import StableDiffusionXLImg2ImgPipeline

    from pipelines.dreambooth.dataset import encode, to_tensor
    from pipelines.shapes.render import render
    from pipelines.shapes.world import Scene

    components = tm.tiny_components("sdxl", vae_overrides={"latents_mean": [0.3, -0.2, 0.1, 0.05],
                                                          "latents_std": [1.5, 0.7, 1.1, 0.9]})
    pipe = StableDiffusionXLImg2ImgPipeline(**components)
    picture = render(Scene("star", "red", "blue", "large", "center"))
    pixels = to_tensor([picture], 64)
    theirs = pipe.prepare_latents(pixels, None, 1, 1, torch.float32, torch.device("cpu"),
                                  generator=torch.Generator().manual_seed(3), add_noise=False)
    ours = encode(components["vae"], [picture], 64)
    noise = torch.randn(ours.mean.shape, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(ours.mean + ours.std * noise, theirs, atol=1e-5)


def test_shift_factor_round_trips():
    """SD3-style VAEs shift before scaling; decode(encode(x)) must see the VAE's own latent again."""
    plain = tm.tiny_components("sd1")["vae"]
    shifted = tm.tiny_components("sd1", vae_overrides={"shift_factor": 0.6})["vae"]
    shifted.load_state_dict(plain.state_dict())
    raw = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    in_pipeline = previews.vae_latents_to_pipeline(shifted, raw)
    assert torch.allclose(in_pipeline, (raw - 0.6) * shifted.config.scaling_factor)
    assert torch.allclose(previews.pipeline_latents_to_vae(shifted, in_pipeline), raw, atol=1e-6)
    assert torch.allclose(previews.decode_tensor(shifted, in_pipeline),
                          previews.decode_tensor(plain, previews.vae_latents_to_pipeline(plain, raw)), atol=1e-5)

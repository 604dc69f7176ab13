"""Hires fix: text to image at width x height, upscaled, denoised again with its own steps, in one request; the
bundled model's 128 -> 256 keeps the scene its first pass drew."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipelines import GenerationRequest
from pipelines.metadata import read_settings
from pipelines.modes.start import a1111_steps, diffusers_steps
from pipelines.shapes.judge import read
from pipelines.shapes.world import ATTRIBUTES, evaluation_prompts


def test_step_arithmetic_is_a1111s_and_diffusers():
    # sd_samplers_common.setup_img2img_steps: steps=None -> (N, int(min(d, .999) * N)); steps=n -> (int(n / d), n - 1)
    # and sample_img2img runs t_enc + 1 of them
    assert a1111_steps(20, 0.6) == (20, 13) and a1111_steps(20, 1.0) == (20, 20) and a1111_steps(20, 0.01) == (20, 1)
    assert a1111_steps(10, 0.7, exact=True) == (14, 10) and a1111_steps(12, 1.0, exact=True) == (12, 12)
    assert diffusers_steps(20, 0.6) == (20, 12) and diffusers_steps(20, 0.01) == (20, 0)


@pytest.fixture(scope="module")
def pairs(registry):
    """Ten held-out prompts: the plain 128px picture and the hires-fixed 256px one (Latent, 10 steps, 0.4)."""
    out = []
    for k, (scene, prompt) in enumerate(evaluation_prompts(10, seed=7)):
        base = registry.generate(GenerationRequest(prompt=prompt, seed=k))
        hires = registry.generate(GenerationRequest(prompt=prompt, seed=k, hires_scale=2.0, hires_steps=10,
                                                    hires_denoising=0.4))
        out.append((scene, base, hires))
    return out


def test_the_hires_fix_keeps_the_judged_scene(pairs):
    same = {attribute: 0 for attribute in ATTRIBUTES}
    whole = 0
    for _, base, hires in pairs:
        assert hires.images[0].size == (256, 256)
        first, second = read(base.images[0]), read(hires.images[0])
        agree = {a: getattr(first, a) == getattr(second, a) for a in ATTRIBUTES}
        whole += all(agree.values())
        for attribute, kept in agree.items():
            same[attribute] += kept
    # Measured with the bundled UNet that draws anywhere: position, size and background 10 of 10, colour 9,
    # shape 8, all five 7. The second pass, at twice the size the model trained at, squares off two small
    # shapes (a triangle and a star; the star's red also greys). The UNet before it kept shape 9, colour 7,
    # all five 6: its colour changed where the first pass drew one between two of the palette's.
    assert same["position"] == same["size"] == same["background"] == 10, same
    assert same["shape"] >= 8 and same["color"] >= 7 and whole >= 6, (whole, same)


def test_hires_settings_are_written_and_read_back_as_a1111_names_them(pairs):
    _, _, hires = pairs[0]
    text = Image.open(hires.paths[0]).info["parameters"]
    assert "Size: 128x128" in text  # A1111 writes the first pass's size
    assert "Hires upscale: 2, Hires steps: 10, Hires upscaler: Latent, Denoising strength: 0.4" in text
    from pipelines.metadata.a1111 import read_parameters

    fields = read_parameters(text).fields
    assert (fields["hires_scale"], fields["hires_steps"], fields["hires_upscaler"], fields["hires_denoising"]) == \
        (2.0, 10, "Latent", 0.4)
    assert "denoising_strength" not in fields
    ours = read_settings(hires.paths[0]).fields
    assert ours["hires_scale"] == 2.0 and ours["hires_denoising"] == 0.4 and "denoising_strength" not in ours


@pytest.mark.parametrize("upscaler", ["Latent (nearest)", "Lanczos"])
def test_one_request_counts_both_passes(registry, upscaler):
    updates = []
    result = registry.generate(GenerationRequest(prompt="a red circle", width=64, height=64, steps=6, seed=2,
                                                 num_images=2, hires_scale=1.5, hires_steps=4,
                                                 hires_upscaler=upscaler, hires_denoising=0.5),
                               on_step=updates.append, preview_every=1)
    assert [u.step for u in updates] == list(range(1, 21)) and {u.total for u in updates} == {20}
    assert [u.preview.size for u in updates[4:7]] == [(64, 64), (64, 64), (96, 96)]
    assert [image.size for image in result.images] == [(96, 96)] * 2
    alone = registry.generate(GenerationRequest(prompt="a red circle", width=64, height=64, steps=6, seed=3,
                                                hires_scale=1.5, hires_steps=4, hires_upscaler=upscaler,
                                                hires_denoising=0.5))
    assert np.array_equal(np.asarray(alone.images[0]), np.asarray(result.images[1]))  # image k: seed + k, both passes

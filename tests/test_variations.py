"""Seed variations, batch count and Skip: the starting noise is diffusers' own without a variation,
AUTOMATIC1111's slerp with one; seeds per image as A1111 gives them; Skip ends one image, Stop keeps the
finished ones."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pipelines import GenerationCancelled, GenerationRequest, InvalidRequest
from pipelines.metadata import a1111_parameters, parse_parameters
from pipelines.noise import image_seeds, initial_latents, slerp

PROMPT = "a large red circle in the center on a white background"
BASE = GenerationRequest(prompt=PROMPT, scheduler="Euler a", steps=4, width=64, height=64, seed=5)


def pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def images(registry):
    """Every picture the tests compare, made once."""
    deterministic = BASE.with_(scheduler="Euler")
    runs = {
        "plain": BASE,
        "plain ddim": BASE.with_(scheduler="DDIM"),
        "strength 0": BASE.with_(variation_seed=9, variation_strength=0.0),
        "variation": BASE.with_(variation_seed=9, variation_strength=0.3),
        "variation again": BASE.with_(variation_seed=9, variation_strength=0.3),
        "full euler": deterministic.with_(variation_seed=9, variation_strength=1.0),
        "seed 9 euler": deterministic.with_(seed=9),
        "batch count": BASE.with_(seed=20, batch_count=3),
        "seed 21": BASE.with_(seed=21),
    }
    return {name: registry.generate(request) for name, request in runs.items()}


def test_starting_noise_without_a_variation_is_what_diffusers_draws(registry):
    from diffusers import StableDiffusionPipeline

    loaded = registry.load("shapes")
    pipe = StableDiffusionPipeline(**{k: loaded.components[k] for k in ("vae", "text_encoder", "tokenizer", "unet",
                                                                         "scheduler")},
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    theirs, ours = torch.Generator("cpu").manual_seed(7), torch.Generator("cpu").manual_seed(7)
    expected = pipe.prepare_latents(1, 4, 64, 64, torch.float32, "cpu", theirs) / pipe.scheduler.init_noise_sigma
    got = initial_latents((1, 4, 8, 8), ours, dtype=torch.float32, device="cpu")
    assert torch.equal(got, expected)
    assert torch.equal(torch.randn(5, generator=ours), torch.randn(5, generator=theirs))  # same state after


def test_strength_zero_keeps_the_pixels_of_diffusers_own_noise(registry, images):
    """With a diffusers-form sampler the image equals StableDiffusionPipeline drawing its own noise from the
    same generator (the k-diffusion samplers start from the same noise: test_a1111_samplers.py)."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    from pipelines.previews import decode

    loaded = registry.load("shapes")
    scheduler = DDIMScheduler.from_config(loaded.base_scheduler_config)
    pipe = StableDiffusionPipeline(**{k: loaded.components[k] for k in ("vae", "text_encoder", "tokenizer", "unet")},
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    with torch.inference_mode():
        latents = pipe(PROMPT, num_inference_steps=4, guidance_scale=7.0, width=64, height=64,
                       output_type="latent", generator=torch.Generator("cpu").manual_seed(5)).images
    assert np.array_equal(pixels(decode(loaded.components["vae"], latents)[0]), pixels(images["plain ddim"].images[0]))
    assert np.array_equal(pixels(images["strength 0"].images[0]), pixels(images["plain"].images[0]))


def test_full_strength_draws_the_variation_seeds_picture(images):
    assert np.array_equal(pixels(images["full euler"].images[0]), pixels(images["seed 9 euler"].images[0]))


def test_a_variation_is_reproducible_and_lies_between(images):
    first, again = images["variation"].images[0], images["variation again"].images[0]
    assert np.array_equal(pixels(first), pixels(again))
    assert np.abs(pixels(first) - pixels(images["plain"].images[0])).max() > 8


def test_slerp_ends_are_the_two_noises_and_it_keeps_their_length():
    low = torch.randn(4, 16, 16, generator=torch.Generator().manual_seed(1))
    high = torch.randn(4, 16, 16, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(slerp(0.0, low, high), low, atol=1e-6)
    assert torch.allclose(slerp(1.0, low, high), high, atol=1e-6)
    halfway = slerp(0.5, low, high)
    # A1111 normalises along dim 1: each (channel, column) vector keeps about the length of its ends
    ratio = torch.norm(halfway, dim=1) / ((torch.norm(low, dim=1) + torch.norm(high, dim=1)) / 2)
    assert 0.85 < ratio.mean() < 1.15
    assert torch.allclose(slerp(0.3, low, low), low, atol=1e-6)  # nearly parallel: their fallback branch


def test_seeds_per_image_as_automatic1111_gives_them():
    plain = GenerationRequest(prompt="x", seed=10, num_images=2, batch_count=2)
    assert image_seeds(plain) == [(10, -1), (11, -1), (12, -1), (13, -1)]
    varied = plain.with_(variation_seed=100, variation_strength=0.5)
    assert image_seeds(varied) == [(10, 100), (10, 101), (10, 102), (10, 103)]  # variations of one picture


def test_batch_count_makes_separate_seeds_in_order(images):
    batch = images["batch count"]
    assert batch.seeds == [20, 21, 22] and len(batch.paths) == 3
    assert [item.request.batch_count for item in batch.items] == [1, 1, 1]
    assert np.array_equal(pixels(batch.images[1]), pixels(images["seed 21"].images[0]))


def test_variation_written_in_automatic1111_fields_only_when_used(images):
    item = images["variation"].items[0]
    text = a1111_parameters(item.request)
    assert "Seed: 5," in text and "Variation seed: 9, Variation seed strength: 0.3" in text
    assert (parse_parameters(text)["variation_seed"], parse_parameters(text)["variation_strength"]) == (9, 0.3)
    assert "Variation" not in a1111_parameters(images["plain"].items[0].request)
    a1111 = ("a fox\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Variation seed: 77, "
             "Variation seed strength: 0.25, Model: x")
    assert parse_parameters(a1111)["variation_seed"] == 77 and parse_parameters(a1111)["variation_strength"] == 0.25


@pytest.mark.parametrize("changes, message", [
    ({"batch_count": 0}, "batch_count: must be from 1 to 100, got 0"),
    ({"batch_count": 101}, "batch_count: must be from 1 to 100, got 101"),
    ({"variation_strength": 1.5}, "variation_strength: must be from 0 to 1, got 1.5"),
    ({"variation_strength": float("nan")}, "variation_strength: must be a number from 0 to 1"),
    ({"variation_seed": -2}, "variation_seed: must be -1 (random) or a whole number from 0 to"),
    ({"seed": 2**32 - 2, "batch_count": 3}, "seed: must be -1 (random) or a whole number from 0 to 4294967293"),
])
def test_out_of_range_new_fields_are_refused_by_name(registry, changes, message):
    with pytest.raises(InvalidRequest, match=message.replace("(", r"\(").replace(")", r"\)")):
        registry.validate(BASE.with_(**changes))


def test_a_random_variation_seed_is_picked_and_reported(registry):
    result = registry.generate(BASE.with_(steps=1, variation_strength=0.2, num_images=2))
    variation = [item.request.variation_seed for item in result.items]
    assert variation[0] >= 0 and variation[1] == variation[0] + 1
    assert result.request.variation_seed == variation[0]


def test_skip_ends_one_image_and_the_run_goes_on(fresh_registry):
    asked = []

    def skip_the_first_image_at_step_two():
        asked.append(1)
        return len(asked) == 2

    steps = []
    result = fresh_registry.generate(BASE.with_(num_images=2, steps=5), on_step=lambda u: steps.append(u.step),
                                     should_skip=skip_the_first_image_at_step_two)
    assert [item.skipped_at for item in result.items] == [2, None]
    assert result.items[0].path is None and result.items[1].path is not None  # unfinished: not saved
    assert steps == [1, 2, 6, 7, 8, 9, 10]  # the second image's steps count from its own start


def test_stop_keeps_and_reports_the_images_already_made(fresh_registry):
    seen = []

    def stop_in_the_second_image():
        return len(seen) > 4

    with pytest.raises(GenerationCancelled) as stopped:
        fresh_registry.generate(BASE.with_(num_images=3, steps=3), on_step=lambda u: seen.append(u.step),
                                should_stop=stop_in_the_second_image)
    partial = stopped.value.partial
    assert partial is not None and partial.seeds == [5]
    assert len(partial.paths) == 1 and partial.paths[0].endswith("-5.png")

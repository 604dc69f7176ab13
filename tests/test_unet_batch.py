"""Several images of a request through the UNet at once (pipelines/sampling/batched.py): each keeps its own
seed's noise, so a batched image is the picture its seed gives alone, up to the arithmetic of a larger
batch; the sampler path alone is held against k-diffusion in tests/test_a1111_samplers.py.

Measured here (bundled model, 128x128, CPU float32): at most 1/255 apart from the same seed alone; images
of other seeds in the same batch are tens of levels apart on average.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import tiny_models as tm
from pipelines import GenerationRequest, PipelineRegistry
from pipelines.requests import AdapterInput
from pipelines.shapes.render import condition_map, shape_geometry
from pipelines.shapes.world import Scene

PROMPT = "a large red circle in the top left on a blue background"
# ancestral noise per step (Euler a), a Brownian path per image (DPM++ 2M SDE)
SAMPLERS = ("Euler a", "DPM++ 2M SDE")  # DPM++ 2M: the adapter test


@pytest.fixture(scope="module")
def registries():
    alone = PipelineRegistry(models_dir=None, device="cpu", save_outputs=False)
    together = PipelineRegistry(models_dir=None, device="cpu", save_outputs=False, unet_batch=4)
    return alone, together


def _pixels(images) -> list[np.ndarray]:
    return [np.asarray(image, dtype=np.int16) for image in images]


def _assert_same_pictures(alone, together, tolerance: int = 2):
    """Image k of the batch is image k alone (within `tolerance` levels), and far from every other image."""
    assert len(alone) == len(together)
    for k, (a, b) in enumerate(zip(alone, together)):
        assert np.abs(a - b).max() <= tolerance, f"image {k}: {np.abs(a - b).max()} levels from its seed alone"
        for j, other in enumerate(alone):
            if j != k:
                assert np.abs(other - b).mean() > 20 * max(np.abs(a - b).mean(), 0.01), (k, j)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_batched_images_keep_their_own_seeds(registries, sampler):
    alone, together = registries
    request = GenerationRequest(prompt=PROMPT, scheduler=sampler, steps=8, seed=21, num_images=3,
                                guidance_scale=7.0)
    _assert_same_pictures(_pixels(alone.generate(request).images), _pixels(together.generate(request).images))


def test_batches_follow_the_batch_size_and_report_progress_over_the_request(registries):
    alone, together = registries
    request = GenerationRequest(prompt=PROMPT, scheduler="Euler a", steps=4, seed=3, num_images=2, batch_count=2)
    steps = []
    result = together.generate(request, on_step=lambda update: steps.append((update.step, update.total)))
    assert [total for _, total in steps] == [16] * len(steps)
    assert [step for step, _ in steps] == sorted(step for step, _ in steps) and steps[-1][0] == 16
    assert len(steps) == 8  # two batches of two images, four steps each: one update per UNet batch step
    assert [item.seed for item in result.items] == [3, 4, 5, 6]
    _assert_same_pictures(_pixels(alone.generate(request).images), _pixels(result.images))


def test_skip_ends_the_current_batch_and_keeps_its_images(registries):
    _, together = registries
    request = GenerationRequest(prompt=PROMPT, scheduler="Euler a", steps=6, seed=9, num_images=2, batch_count=2)
    asked = {"n": 0}

    def skip_once_in_first_batch():
        asked["n"] += 1
        return asked["n"] == 2

    result = together.generate(request, should_skip=skip_once_in_first_batch)
    assert len(result.images) == 4
    full = together.generate(request).images
    # the first batch (images 0 and 1) ended early, the second ran all its steps
    assert all(np.abs(a - b).mean() > 1 for a, b in zip(_pixels(result.images[:2]), _pixels(full[:2])))
    assert all(np.abs(a - b).max() == 0 for a, b in zip(_pixels(result.images[2:]), _pixels(full[2:])))


def test_adapter_features_are_given_to_every_image_of_the_batch(registries):
    alone, together = registries
    scene = Scene("square", "yellow", "black", "large", "bottom right")
    sketch = condition_map("sketch", scene, shape_geometry(scene))
    request = GenerationRequest(prompt="a large yellow square on a black background", scheduler="DPM++ 2M",
                                steps=8, seed=40, num_images=2, adapters=(AdapterInput("sketch", sketch),))
    _assert_same_pictures(_pixels(alone.generate(request).images), _pixels(together.generate(request).images))


def test_diffusers_schedulers_run_image_by_image(registries):
    """One diffusers scheduler call draws a batch's noise from one generator: those stay one image at a time,
    so a batch is exactly the images alone."""
    alone, together = registries
    request = GenerationRequest(prompt=PROMPT, scheduler="DDIM", steps=5, seed=2, num_images=2)
    assert all(np.array_equal(a, b) for a, b in zip(_pixels(alone.generate(request).images),
                                                   _pixels(together.generate(request).images)))


def test_sdxl_size_conditioning_goes_with_each_row():
    """SDXL's pooled text embeddings and size/crop ids are widened with the images: the batched UNet call of a
    tiny random SDXL UNet (built from its config) gives each image what it gives that image alone."""
    from pipelines.sampling.batched import for_images
    from pipelines.sampling.guided_unet import GuidedUNet

    unet = tm.tiny_components("sdxl")["unet"]
    torch.manual_seed(0)
    config = unet.config
    width = config.cross_attention_dim
    pooled = config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim
    embeds = torch.randn(2, 7, width)  # [unconditional, conditional]
    added = {"text_embeds": torch.randn(2, pooled), "time_ids": torch.tensor([[64.0, 64, 0, 0, 64, 64]] * 2)}
    template = GuidedUNet(unet, embeds, guidance_scale=5.0, guided=True, added_cond=added)
    latents, timestep = torch.randn(3, 4, 8, 8), torch.tensor(500.0)
    with torch.inference_mode():
        rows = for_images(template, 3).outputs(latents, timestep)  # [uncond x3; cond x3]
        for k in range(3):
            single = template.outputs(latents[k:k + 1], timestep)
            torch.testing.assert_close(rows[[k, k + 3]], single, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(rows[0], rows[1], atol=1e-3)  # the rows are each image's own


def test_the_device_decides_the_default_and_bad_values_are_refused():
    from pipelines.fast.paths import CUDA_UNET_BATCH, choose

    assert choose(torch.device("cpu")).unet_batch == 1
    assert choose(torch.device("cuda"), torch.float16).unet_batch == CUDA_UNET_BATCH > 1
    assert choose(torch.device("cuda"), torch.float16, unet_batch=1).unet_batch == 1
    for bad in (0, 65, 2.5, "4"):
        with pytest.raises(ValueError, match="unet_batch"):
            PipelineRegistry(models_dir=None, device="cpu", save_outputs=False, unet_batch=bad)

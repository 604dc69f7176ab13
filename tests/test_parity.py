"""The studio draws what diffusers' own pipeline draws: same model, scheduler, seed and settings, compared
pixel for pixel with diffusers called with output_type="pil".

Tiny random SD 1.x, SD 2.x (v-prediction) and SDXL models are built from the shipped configs
(tests/tiny_models.py), saved, and loaded by both sides from the same folder, in each precision this CPU
offers (float32, bfloat16). These guard everything the studio does itself around the denoising (prompt
encoding, per-image seeds, schedulers from the saved config, the VAE decode and its postprocessing, SDXL's
size conditioning).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import tiny_models as tm

SIZES = {"sd1": 256, "sd2": 256, "sdxl": 512}  # the smallest each family's limits allow
PROMPT, NEGATIVE = "a red circle on a blue background", "blurry"
STEPS, GUIDANCE, SEED = 3, 5.0, 11
SCHEDULERS_FP32 = ("DDIM", "UniPC", "PLMS", "DEIS")  # the k samplers: tests/test_a1111_samplers.py
SCHEDULERS_BF16 = ("DDIM", "UniPC")
CASES = [(family, "float32", name) for family in tm.FAMILIES for name in SCHEDULERS_FP32]
CASES += [(family, "bfloat16", name) for family in tm.FAMILIES for name in SCHEDULERS_BF16]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    found = {family: tm.save_model(family, root / family) for family in tm.FAMILIES}
    # SDXL-style latent normalisation (SDXL's own VAE has none; later models' VAEs do)
    found["sdxl-latents-stats"] = tm.save_model("sdxl", root / "sdxl-stats", vae_overrides={
        "latents_mean": [0.3, -0.2, 0.1, 0.05], "latents_std": [1.5, 0.7, 1.1, 0.9]})
    return found


@pytest.fixture(scope="module")
def registries():
    from pipelines import PipelineRegistry

    return {dtype: PipelineRegistry(models_dir=None, device="cpu", dtype=dtype, save_outputs=False)
            for dtype in ("float32", "bfloat16")}


@pytest.fixture(scope="module")
def diffusers_pipes(folders, registries):
    """diffusers' pipelines on the same folders, given the memory layout the studio chose for the dtype
    (channels_last for bfloat16 on a CPU with native bfloat16: a layout, which changes the last bits of
    oneDNN's convolutions; its effect on pictures is measured in tests/test_fast_paths.py)."""
    from pipelines.fast import paths as fast_paths

    cache = {}

    def get(key: str, dtype: str):
        if (key, dtype) not in cache:
            family = key.split("-")[0]
            pipe = tm.load_diffusers(family, folders[key], getattr(torch, dtype))
            fast_paths.apply(pipe.components, registries[dtype].fast_paths_for(family))
            cache[key, dtype] = pipe
        return cache[key, dtype]
    return get


def studio_images(registries, folder, family, dtype, scheduler, num_images=1):
    from pipelines import GenerationRequest

    request = GenerationRequest(prompt=PROMPT, negative_prompt=NEGATIVE, model=str(folder), scheduler=scheduler,
                                steps=STEPS, guidance_scale=GUIDANCE, width=SIZES[family],
                                height=SIZES[family], seed=SEED, num_images=num_images)
    return [np.asarray(image) for image in registries[dtype].generate(request).images]


def diffusers_image(pipe, family, scheduler, seed):
    from pipelines.schedulers import SCHEDULERS

    spec = SCHEDULERS[scheduler]
    pipe.scheduler = spec.cls.from_config(pipe.scheduler.config, **spec.overrides)
    out = pipe(PROMPT, negative_prompt=NEGATIVE, num_inference_steps=STEPS, guidance_scale=GUIDANCE,
               width=SIZES[family], height=SIZES[family], generator=torch.Generator("cpu").manual_seed(seed),
               output_type="pil")
    return np.asarray(out.images[0])


@pytest.mark.parametrize("family, dtype, scheduler", CASES)
def test_studio_image_equals_diffusers(folders, registries, diffusers_pipes, family, dtype, scheduler):
    ours = studio_images(registries, folders[family], family, dtype, scheduler)[0]
    theirs = diffusers_image(diffusers_pipes(family, dtype), family, scheduler, SEED)
    assert ours.std() > 5, "a flat image would make the comparison meaningless"
    assert np.array_equal(ours, theirs), f"{np.count_nonzero(ours != theirs)} pixels differ"


def test_each_image_of_a_request_is_diffusers_with_its_own_seed(folders, registries, diffusers_pipes):
    ours = studio_images(registries, folders["sd1"], "sd1", "float32", "DDIM", num_images=2)
    for k, image in enumerate(ours):
        assert np.array_equal(image, diffusers_image(diffusers_pipes("sd1", "float32"), "sd1", "DDIM", SEED + k))
    assert not np.array_equal(ours[0], ours[1])


def test_vae_latent_mean_and_std_are_undone_as_diffusers_does(folders, registries, diffusers_pipes):
    ours = studio_images(registries, folders["sdxl-latents-stats"], "sdxl", "float32", "DDIM")[0]
    theirs = diffusers_image(diffusers_pipes("sdxl-latents-stats", "float32"), "sdxl", "DDIM", SEED)
    assert np.array_equal(ours, theirs)
    plain = studio_images(registries, folders["sdxl"], "sdxl", "float32", "DDIM")[0]
    assert np.abs(ours.astype(int) - plain).mean() > 1, "the statistics must change what is decoded"


def _time_ids(unet, run) -> list[torch.Tensor]:
    """Every `time_ids` the UNet is called with while `run()` runs."""
    seen = []

    def hook(module, args, kwargs):
        seen.append(kwargs["added_cond_kwargs"]["time_ids"].detach().float().cpu().clone())
    handle = unet.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        run()
    finally:
        handle.remove()
    return seen


def test_sdxl_size_and_crop_conditioning_match_diffusers(folders, registries, diffusers_pipes):
    """SDXL is told the original size, the crop's top-left corner and the target size, as (H, W) pairs."""
    from pipelines import GenerationRequest
    from pipelines.schedulers import SCHEDULERS

    width, height = 640, 512
    registry = registries["float32"]
    request = GenerationRequest(prompt=PROMPT, model=str(folders["sdxl"]), scheduler="DDIM", steps=2,
                                guidance_scale=GUIDANCE, width=width, height=height, seed=SEED)
    ours = _time_ids(registry.load(request.model).components["unet"], lambda: registry.generate(request))
    pipe = diffusers_pipes("sdxl", "float32")
    pipe.scheduler = SCHEDULERS["DDIM"].cls.from_config(pipe.scheduler.config)
    theirs = _time_ids(pipe.unet, lambda: pipe(PROMPT, num_inference_steps=2, guidance_scale=GUIDANCE, width=width,
                                                height=height, output_type="latent",
                                                generator=torch.Generator().manual_seed(SEED)))
    expected = torch.tensor([[height, width, 0, 0, height, width]] * 2, dtype=torch.float32)  # CFG: 2 rows
    assert len(ours) == len(theirs) == 2
    for mine, reference in zip(ours, theirs):
        assert torch.equal(mine, reference) and torch.equal(mine, expected)

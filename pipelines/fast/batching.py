"""Several images of one request through the UNet together (a GPU's throughput grows with the batch).

Each image keeps its own seed's noise: the starting latent and every fresh noise an ancestral or SDE sampler
draws come from that image's own CPU generator (diffusers' `randn_tensor` draws batch item k from
generator k), and DPM++ SDE's Brownian tree gets one seed per image. So a batched image is the image its
seed gives alone, up to floating point: a batched matrix product adds in another order. How far that goes is
measured by tests/test_fast_paths.py (the README gives the figure).

The studio's denoising loop is the lead's to batch; `batched_latents` is the drop-in for the current
diffusers-pipeline path and the reference for that loop.
"""
from __future__ import annotations

import torch

from pipelines.schedulers import build_scheduler


def generators(seeds: list[int]) -> list[torch.Generator]:
    """One CPU generator per image, seeded as the image alone would be (the studio's rule: seed + k)."""
    return [torch.Generator("cpu").manual_seed(seed) for seed in seeds]


def batched_latents(loaded, request, seeds: list[int], embeddings: dict, pipe_factory) -> torch.Tensor:
    """Denoise every seed's image in one pipeline call; returns the final latents (one per seed).

    `embeddings` holds one prompt's embeddings (batch 1); `pipe_factory(scheduler)` builds the pipeline
    (generation.build_pipeline). The scheduler gets every image's noise seed."""
    scheduler = build_scheduler(request.scheduler, loaded.base_scheduler_config, noise_seeds=list(seeds))
    pipe = pipe_factory(scheduler)
    with torch.inference_mode():
        return pipe(**embeddings, num_images_per_prompt=len(seeds), num_inference_steps=request.steps,
                    guidance_scale=request.guidance_scale, width=request.width, height=request.height,
                    generator=generators(seeds), output_type="latent").images

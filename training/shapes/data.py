"""Training data for the shapes model: scenes rendered on the fly from fixed seeds."""
from __future__ import annotations

import random

import numpy as np
import torch

from pipelines.shapes.render import condition_map, render, shape_geometry
from pipelines.shapes.world import POSITIONS, Scene, caption, random_keep, training_scene


def to_tensor(image) -> torch.Tensor:
    """PIL RGB -> float tensor in [-1, 1], channels first."""
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1)


def render_pool(count: int, seed: int, conditions: tuple[str, ...] = (), with_centres: bool = False,
                anywhere: float = 0.0):
    """`count` random scenes, their images and (optionally) condition maps as uint8 tensors, and with
    `with_centres` the shapes' centres (x, y) in pixels. An `anywhere` share of the scenes is placed anywhere
    at any width (drawings.anywhere_scene) instead of on the grid in two sizes."""
    from pipelines.shapes.drawings import anywhere_scene

    rng = random.Random(seed)
    scenes, geometries, images, maps = [], [], [], {k: [] for k in conditions}
    for _ in range(count):
        if anywhere and rng.random() < anywhere:
            scene, geometry = anywhere_scene(rng, held_out=False)
        else:
            scene = training_scene(rng)
            geometry = shape_geometry(scene, rng)
        scenes.append(scene)
        geometries.append(geometry)
        images.append(np.asarray(render(scene, geometry=geometry)))
        for kind in conditions:
            maps[kind].append(np.asarray(condition_map(kind, scene, geometry)))
    as_tensor = lambda arrays: torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    pool = (scenes, as_tensor(images), {k: as_tensor(v) for k, v in maps.items()})
    return pool + (torch.tensor([g[:2] for g in geometries]),) if with_centres else pool


def drawing_pool(count: int, seed: int, kind: str, share: float):
    """Like render_pool for one adapter kind, but a `share` of the scenes drawn as people draw them
    (pipelines/shapes/drawings.py: anywhere, any size, other strokes and styles), rendered where drawn."""
    from pipelines.shapes.drawings import random_drawing

    rng = random.Random(seed)
    scenes, images, maps = [], [], []
    for _ in range(count):
        if rng.random() < share:
            drawing = random_drawing(kind, rng, held_out=False)
            scene = drawing.scene
            images.append(np.asarray(render(scene, geometry=drawing.geometry, star_inner=drawing.star_inner)))
            maps.append(np.asarray(drawing.condition()))
        else:
            scene = training_scene(rng)
            geometry = shape_geometry(scene, rng)
            images.append(np.asarray(render(scene, geometry=geometry)))
            maps.append(np.asarray(condition_map(kind, scene, geometry)))
        scenes.append(scene)
    as_tensor = lambda arrays: torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return scenes, as_tensor(images), {kind: as_tensor(maps)}


def uint8_to_unit(batch: torch.Tensor) -> torch.Tensor:
    return batch.float() / 127.5 - 1.0


def training_captions(scenes: list[Scene], rng: random.Random, p_empty: float = 0.1,
                      p_wrong_position: float = 0.0) -> list[str]:
    """Captions for a batch: attributes dropped at random, the empty caption with `p_empty` (for
    classifier-free guidance), and a wrong position with `p_wrong_position` (teaches an adapter to win)."""
    out = []
    for scene in scenes:
        if rng.random() < p_empty:
            out.append("")
            continue
        if rng.random() < p_wrong_position:
            scene = Scene(scene.shape, scene.color, scene.background, scene.size,
                          rng.choice([p for p in POSITIONS if p != scene.position]))
        out.append(caption(scene, rng, random_keep(rng)))
    return out


@torch.no_grad()
def encode_pool(vae, images: torch.Tensor, batch: int = 128) -> torch.Tensor:
    """uint8 images -> scaled latents (the posterior mean), as the pipelines feed the UNet."""
    latents = [vae.encode(uint8_to_unit(images[i:i + batch])).latent_dist.mean
               for i in range(0, len(images), batch)]
    return torch.cat(latents) * vae.config.scaling_factor


def latent_pool(cache, vae_dir, count: int, seed: int, conditions: tuple[str, ...] = (),
                drawings: float = 0.0, anywhere: float = 0.0) -> dict:
    """Scenes, their VAE latents and condition maps, rendered and encoded once, then read from `cache`.
    `drawings`: the share drawn as people draw (one condition kind only); `anywhere`: the share of scenes
    placed anywhere at any width (render_pool)."""
    if cache.exists():
        return torch.load(cache, weights_only=False)
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(vae_dir, dtype=torch.float32).eval()
    if drawings:
        scenes, images, maps = drawing_pool(count, seed, conditions[0], drawings)
    else:
        scenes, images, maps = render_pool(count, seed=seed, conditions=conditions, anywhere=anywhere)
    pool = {"scenes": scenes, "latents": encode_pool(vae, images), "maps": maps}
    torch.save(pool, cache)
    return pool

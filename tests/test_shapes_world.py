"""The shapes world and its judge: the judge must be right on the renderer's own images before it may
judge the model (>= 98% on every attribute)."""
import random

import numpy as np
import pytest
import torch
from PIL import Image

from pipelines.shapes.judge import iou, read
from pipelines.shapes.render import condition_map, render, shape_geometry, shape_mask
from pipelines.shapes.world import (ATTRIBUTES, Scene, all_scenes, caption, evaluation_prompts, is_held_out,
                                    random_scene, training_scene)


@pytest.fixture(scope="module")
def rendered():
    rng = random.Random(11)
    cases = []
    for _ in range(400):
        scene = random_scene(rng)
        geometry = shape_geometry(scene, rng)
        cases.append((scene, geometry, render(scene, geometry=geometry)))
    return cases


@pytest.mark.parametrize("attribute", ATTRIBUTES)
def test_judge_reads_every_attribute_of_rendered_scenes(rendered, attribute):
    correct = [read(image).matches(scene, attribute) for scene, _, image in rendered]
    assert np.mean(correct) >= 0.98


def test_judge_mask_matches_the_drawn_shape(rendered):
    ious = [iou(read(image).mask, shape_mask(scene, geometry)) for scene, geometry, image in rendered]
    assert np.mean(ious) > 0.9


def test_judge_finds_no_shape_in_a_blank_image():
    from PIL import Image

    reading = read(Image.new("RGB", (128, 128), (40, 80, 220)))
    assert reading.background == "blue" and reading.shape is None


@pytest.mark.parametrize("kind", ["sketch", "edge", "depth"])
def test_condition_maps_are_bright_where_the_shape_is(kind):
    scene = Scene("square", "red", "blue", "large", "left")
    geometry = shape_geometry(scene)
    condition = np.asarray(condition_map(kind, scene, geometry).convert("L")) > 100
    mask = shape_mask(scene, geometry)
    assert condition.any()
    # Outline kinds light up along the shape's border; depth fills it. Nothing far from the shape is lit.
    import cv2

    far = ~cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    assert not (condition & far).any()
    if kind == "depth":
        assert condition[mask].mean() > 0.9


def test_same_scene_and_seed_render_identically():
    scene = Scene("star", "yellow", "black", "small", "top right")
    a = render(scene, rng=random.Random(5))
    b = render(scene, rng=random.Random(5))
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_scene_rejects_unknown_values_by_name():
    with pytest.raises(ValueError, match="shape"):
        Scene("hexagon", "red", "blue", "small", "left")
    with pytest.raises(ValueError, match="differ"):
        Scene("circle", "red", "red", "small", "left")


def test_held_out_scenes_never_reach_training_and_fill_the_evaluation_set():
    rng = random.Random(0)
    assert not any(is_held_out(training_scene(rng)) for _ in range(2000))
    cases = evaluation_prompts(200)
    assert len({c for _, c in cases}) == 200
    assert all(is_held_out(scene) for scene, _ in cases)
    assert 0.08 < sum(map(is_held_out, all_scenes())) / len(all_scenes()) < 0.12


def test_full_captions_name_every_attribute():
    rng = random.Random(3)
    scene = Scene("triangle", "purple", "white", "large", "bottom left")
    for _ in range(20):
        text = caption(scene, rng)
        for word in ("triangle", "purple", "white", "large", "bottom left"):
            assert word in text


def test_scenes_placed_anywhere_are_read_back_as_their_words_and_never_held_out():
    """The UNet's training pool for drawings (train_unet --anywhere): the judge, which reads positions and
    sizes as regions and ranges, must read each such render as the scene its caption will say."""
    from pipelines.shapes.drawings import anywhere_scene

    rng = random.Random(21)
    placed = [anywhere_scene(rng) for _ in range(150)]
    assert not any(is_held_out(scene) for scene, _ in placed)
    for attribute in ATTRIBUTES:
        correct = [read(render(scene, geometry=geometry)).matches(scene, attribute) for scene, geometry in placed]
        assert np.mean(correct) >= 0.98, attribute
    widths = np.array([geometry[2] / 128 for _, geometry in placed])
    assert widths.min() < 0.25 and widths.max() > 0.65  # not the renderer's two sizes (0.30, 0.55)
    assert len({scene.position for scene, _ in placed}) == 9


def test_render_pool_anywhere_is_opt_in():
    """The committed recipe's pools are unchanged without --anywhere; with it, shapes leave the grid's sizes."""
    from training.shapes.data import render_pool

    plain, unplaced = render_pool(30, seed=4), render_pool(30, seed=4, anywhere=0.0)
    assert unplaced[0] == plain[0] and torch.equal(unplaced[1], plain[1])
    scenes, images, _ = render_pool(30, seed=4, anywhere=1.0)
    extents = [read(Image.fromarray(image.permute(1, 2, 0).numpy())).mask.any(axis=0).sum() / 128
               for image in images]
    assert sum(not (0.26 <= e <= 0.34 or 0.48 <= e <= 0.62) for e in extents) >= 10

"""The text encoder's pre-training (training/shapes/train_text.py): its targets say what each caption
mentions, its loss reads only the states that have seen the whole caption, and a run saves an encoder the
bundled model's pipeline can load."""
import json
import random

import torch

from pipelines.shapes.world import ATTRIBUTES, SHAPES, SIZES, training_scene
from training.shapes.train_text import VALUES, after_end_of_text, caption_batch


def test_targets_name_exactly_what_the_caption_mentions():
    rng = random.Random(0)
    scenes = [training_scene(rng) for _ in range(300)]
    captions, targets = caption_batch(scenes, rng)
    assert targets.shape == (300, len(ATTRIBUTES))
    shape_column, size_column = ATTRIBUTES.index("shape"), ATTRIBUTES.index("size")
    for scene, text, target in zip(scenes, captions, targets.tolist()):
        words = text.replace(",", " ").split()
        named_shapes = [s for s in SHAPES if s in words]
        named_sizes = [s for s in SIZES if s in words]
        if target[shape_column]:
            assert named_shapes == [scene.shape] == [VALUES["shape"][target[shape_column] - 1]], text
        else:
            assert named_shapes == [], text
        assert named_sizes == ([scene.size] if target[size_column] else []), text
        if text == "":
            assert target == [0] * len(ATTRIBUTES)
    assert sum(text == "" for text in captions) > 10  # the empty caption (guidance) is taught "nothing said"


def test_the_loss_reads_the_states_from_the_end_of_text_on():
    eos = 9
    ids = torch.tensor([[8, 1, 2, eos, eos, eos], [8, eos, eos, eos, eos, eos]])
    mask = after_end_of_text(ids, eos)
    assert mask.tolist() == [[False, False, False, True, True, True], [False, True, True, True, True, True]]


def test_a_short_run_saves_an_encoder_the_pipeline_loads(tmp_path):
    from transformers import CLIPTextModel

    from pipelines.catalog import SHAPES_DIR
    from training.shapes.tokenizer import build_tokenizer
    from training.shapes.train_text import main

    main(["--out", str(tmp_path / "text_encoder"), "--steps", "3", "--batch-size", "8"])
    trained = CLIPTextModel.from_pretrained(tmp_path / "text_encoder")
    bundled = CLIPTextModel.from_pretrained(SHAPES_DIR / "text_encoder")
    assert trained.config.to_dict()["hidden_size"] == bundled.config.hidden_size
    # the grammar's vocabulary; a bundled stage-8 student (training/README.md) reads it with the same ids, and more
    assert trained.config.vocab_size == len(build_tokenizer()) <= bundled.config.vocab_size
    accuracy = json.loads((tmp_path / "text_encoder" / "accuracy.json").read_text())
    assert set(accuracy) == set(ATTRIBUTES) and all(0 <= v <= 1 for v in accuracy.values())

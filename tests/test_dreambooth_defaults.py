"""DreamBooth's defaults are data, one record per model family (pipelines/families.py, Family.dreambooth):
the SD families keep the recipe their users know, the bundled model has its own (that it works is
test_dreambooth_train.py's concept test). A setting given, even a bad one, wins over the default, and a bad
one is named; the CLI's --help and the DreamBooth tab show each family's defaults."""
from __future__ import annotations

import re

import pytest

from pipelines.dreambooth.config import FAMILY_DEFAULTED, TrainConfig
from pipelines.families import FAMILIES
from pipelines.requests import InvalidRequest

# diffusers' train_dreambooth_lora.py and the trainers built on it: a rank-4 LoRA at 1e-4, some 400 steps of
# one picture, prior preservation only when asked for (and then toward the class images' noise).
SD_RECIPE = dict(steps=400, learning_rate=1e-4, lora_rank=4, batch_size=1, prior_preservation=False,
                 class_prompt=None, prior_target="images")
RESOLUTION = {"sd1": 512, "sd2": 768, "sdxl": 1024, "shapes": 128}


def blank(**given) -> TrainConfig:
    return TrainConfig(model="m", images="i", instance_prompt="a sks dog", out="o", **given)


def settings(config: TrainConfig, names=SD_RECIPE) -> dict:
    return {name: getattr(config, name) for name in names}


@pytest.mark.parametrize("family", ["sd1", "sd2", "sdxl"])
def test_the_sd_families_keep_the_usual_recipe(family):
    filled = blank().for_family(family)
    assert settings(filled) == SD_RECIPE and filled.resolution == RESOLUTION[family]
    filled.validate()
    assert blank(method="full").for_family(family).learning_rate == 5e-6  # a full fine-tune, in every family
    asked = blank(prior_preservation=True, class_prompt="a photo of a dog").for_family(family)
    assert (asked.prior_target, asked.num_class_images) == ("images", 100)
    with pytest.raises(InvalidRequest, match="class_prompt"):  # no class prompt of their own to fall back on
        blank(prior_preservation=True).for_family(family).validate()


def test_the_bundled_model_has_its_own_and_a_given_setting_wins():
    record = FAMILIES["shapes"].dreambooth
    filled = blank().for_family("shapes")
    assert settings(filled, FAMILY_DEFAULTED) == settings(record, FAMILY_DEFAULTED)
    assert (filled.learning_rate, filled.class_prompt, filled.resolution) == (record.learning_rate, "a shape", 128)
    assert settings(filled) != SD_RECIPE and record.class_prompt  # its own: prior preservation needs the prompt
    filled.validate()
    given = dict(steps=7, learning_rate=3e-3, lora_rank=2, batch_size=3, prior_preservation=False,
                 num_class_images=5, prior_target="images", resolution=64)
    mine = blank(**given).for_family("shapes")
    assert settings(mine, given) == given and mine.class_prompt is None  # no prior: no class prompt filled in
    assert blank(class_prompt="a heart").for_family("shapes").class_prompt == "a heart"
    for name, bad in (("steps", 0), ("lora_rank", 0), ("batch_size", -1), ("num_class_images", 0),
                      ("prior_target", "teacher"), ("learning_rate", 0.5)):
        with pytest.raises(InvalidRequest) as caught:
            blank(**{name: bad}).for_family("shapes").validate()
        assert caught.value.field == name
    with pytest.raises(ValueError, match="for_family"):  # the defaults must be filled in before checking
        blank().validate()


def test_the_bundled_models_prior_also_keeps_ordinary_prompts_of_training_scenes_only():
    """Toward the base model's own predictions, the class images are trained with the class prompt and with
    ordinary captions too (pipelines/dreambooth/train.py, _ordinary_prompts), never the evaluation's scenes."""
    from pipelines.dreambooth.train import _ordinary_prompts
    from pipelines.shapes.world import all_scenes, caption, is_held_out

    prompts = _ordinary_prompts(blank().for_family("shapes"), "shapes")
    assert len(set(prompts)) >= 150 and prompts == _ordinary_prompts(blank().for_family("shapes"), "shapes")
    words = {w for p in prompts for w in p.split()}
    assert {"red", "blue", "left", "large", "background"} <= words
    import random

    rng = random.Random(1)
    held_out = {caption(scene, rng) for scene in all_scenes() if is_held_out(scene) for _ in range(3)}
    assert not held_out & set(prompts)
    assert _ordinary_prompts(blank(prior_target="images").for_family("shapes"), "shapes") == ()
    assert _ordinary_prompts(blank(prior_preservation=False).for_family("shapes"), "shapes") == ()
    assert _ordinary_prompts(blank(prior_preservation=True, class_prompt="a dog", prior_target="model")
                             .for_family("sd1"), "sd1") == ()  # the SD families have no prompts of their own


def test_the_cli_help_names_each_familys_defaults(capsys):
    from studio.cli import build_parser, main

    with pytest.raises(SystemExit):
        main(["train-dreambooth", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    shapes = FAMILIES["shapes"].dreambooth
    for flag, sd, own in (("--steps N", "400", shapes.steps), ("--lora-rank R", "4", shapes.lora_rank),
                          ("--batch-size N", "1", shapes.batch_size),
                          ("--num-class-images N", "100", shapes.num_class_images)):
        assert f"{flag} default: {sd} (sdxl, sd2, sd1), {own} (shapes)" in text
    assert re.search(r"--learning-rate X a LoRA's default: 0.0001 \(sdxl, sd2, sd1\), [0-9.e-]+ \(shapes\); "
                     r"5e-06 for --full", text)
    assert "default: off (sdxl, sd2, sd1), on (shapes)" in text  # --prior-preservation
    assert "default: 'images' (sdxl, sd2, sd1), 'model' (shapes)" in text  # --prior-target
    assert "default: none (sdxl, sd2, sd1), 'a shape' (shapes)" in text  # --class-prompt
    # the four flags leave every family-defaulted setting to the family
    from studio.commands.train_dreambooth import config_from_args

    args = build_parser().parse_args(["train-dreambooth", "--model", "shapes", "--images", "i", "--instance-prompt",
                                      "a sks shape", "--out", "o"])
    config = config_from_args(args)
    assert all(getattr(config, name) is None for name in (*FAMILY_DEFAULTED, "learning_rate", "resolution"))
    off = build_parser().parse_args(["train-dreambooth", "--model", "shapes", "--images", "i", "--instance-prompt",
                                     "a sks shape", "--out", "o", "--no-prior-preservation"])
    assert config_from_args(off).for_family("shapes").prior_preservation is False


@pytest.fixture(scope="module")
def tab(tmp_path_factory):
    """The built studio (not launched); its catalog lists the hub's SD models (nothing is downloaded)."""
    from dreambooth_support import heart_images

    from pipelines import PipelineRegistry
    from studio.ui import build_demo

    root = tmp_path_factory.mktemp("dreambooth_defaults")
    (root / "models").mkdir()
    registry = PipelineRegistry(models_dir=root / "models", outputs_dir=root / "outputs", device="cpu",
                                dtype="float32", save_outputs=False)
    assert registry.model_info("sd21").family == "sd2" and registry.model_info("sdxl").family == "sdxl"
    demo = build_demo(registry)
    rank = next(block for block in demo.blocks.values() if getattr(block, "label", None) == "LoRA rank")
    follow = next(fn for fn in demo.fns.values() if rank in fn.outputs)  # the model picker's event
    train = next(fn for fn in demo.fns.values() if rank in fn.inputs)  # the Train button's run
    start = dict(zip(train.input_keyword_names, (block.value for block in train.inputs)))  # the fields as built
    files = sorted(str(p) for p in heart_images(root / "hearts", count=3).iterdir())
    return registry, follow, files, start


def test_the_tab_shows_the_models_family_defaults_and_follows_the_model(tab):
    from studio.tabs.dreambooth import FAMILY_FIELDS

    registry, follow, _, _ = tab
    shapes = FAMILIES["shapes"].dreambooth
    shown = dict(zip(FAMILY_FIELDS, (block.value for block in follow.outputs)))
    assert shown == dict(prior=shapes.prior_preservation, class_prompt=shapes.class_prompt,
                         num_class_images=shapes.num_class_images, prior_target=shapes.prior_target,
                         steps=shapes.steps, batch_size=shapes.batch_size, lora_rank=shapes.lora_rank)
    for model in ("sd21", "sdxl"):
        picked = dict(zip(FAMILY_FIELDS, follow.fn(model)))
        assert picked == dict(prior=False, class_prompt="", num_class_images=100, prior_target="images", steps=400,
                              batch_size=1, lora_rank=4)
    assert dict(zip(FAMILY_FIELDS, follow.fn("shapes"))) == shown
    kept = follow.fn("/half/typed/pa")  # not a model (yet): the fields keep what they show
    assert kept == [{"__type__": "update"}] * len(FAMILY_FIELDS)  # gr.skip()


def test_the_tabs_defaults_train_what_the_cli_with_four_flags_trains(tab):
    """So the concept test (the CLI with --model, --images, --instance-prompt, --out) speaks for the tab too."""
    from studio.cli import build_parser
    from studio.commands.train_dreambooth import config_from_args
    from studio.tabs.dreambooth import FAMILY_FIELDS, make_config

    registry, _, files, start = tab
    assert start["model"] == "shapes" and set(FAMILY_FIELDS) <= set(start)
    from_tab = make_config(registry, **{**start, "files": files, "instance_prompt": "a sks shape"})
    args = build_parser().parse_args(["train-dreambooth", "--model", "shapes", "--images", "i",
                                      "--instance-prompt", "a sks shape", "--out", "o"])
    from_cli = config_from_args(args).for_family("shapes")
    compared = (*FAMILY_DEFAULTED, "learning_rate", "resolution", "class_prompt", "seed", "checkpoint_every",
                "prior_loss_weight", "method", "max_grad_norm", "mixed_precision")
    assert settings(from_tab, compared) == settings(from_cli, compared)


def test_the_tab_fills_blank_numbers_with_the_family_default_and_names_a_bad_one(tab):
    from studio.tabs.dreambooth import make_config

    registry, _, files, _ = tab
    values = dict(model="shapes", files=files, instance_prompt="a sks shape", class_prompt="", prior=True,
                  num_class_images=None, method="lora", steps="", learning_rate=0, resolution=0, seed=0,
                  checkpoint_every=100, name="blank", batch_size=None, lora_rank=None)
    config = make_config(registry, **values)
    shapes = FAMILIES["shapes"].dreambooth
    assert (config.steps, config.batch_size, config.lora_rank, config.num_class_images, config.class_prompt,
            config.prior_target, config.learning_rate) == (shapes.steps, shapes.batch_size, shapes.lora_rank,
                                                           shapes.num_class_images, "a shape", "model",
                                                           shapes.learning_rate)
    for name, bad in (("steps", -3), ("lora_rank", 0), ("batch_size", 2.5), ("num_class_images", 0)):
        with pytest.raises(InvalidRequest) as caught:
            make_config(registry, **{**values, name: bad})
        assert caught.value.field == name

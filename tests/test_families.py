"""The family table (pipelines/families.py): each record names what the studio does differently for its family,
every table that used to spell families out is derived from it, an unknown family is refused by name, and a new
family is one more record."""
from __future__ import annotations

import json
from dataclasses import replace

import diffusers
import pytest

from dreambooth_support import pipeline_from, tiny_components
from pipelines import GenerationRequest, InvalidRequest, PipelineRegistry
from pipelines.catalog import FAMILY_LIMITS, ModelSpec, SHAPES_DIR, family_of_diffusers_folder
from pipelines.families import FAMILIES, MODES, get_family


def test_every_record_is_complete():
    assert list(MODES) == ["txt2img", "adapter", "img2img", "inpaint"]
    assert set(FAMILIES) == {"shapes", "sd1", "sd2", "sdxl"}
    for key, family in FAMILIES.items():
        assert family.key == key and FAMILY_LIMITS[key] is family.limits
        for mode in family.modes:
            assert issubclass(family.pipeline_class(mode), diffusers.DiffusionPipeline), (key, mode)
        assert (family.config_dir / "model_index.json").exists() and len(family.align_your_steps) == 11
        if family.inpaint_config_dir is not None:
            unet = json.loads((family.inpaint_config_dir / "unet" / "config.json").read_text())
            assert unet["in_channels"] == 9
        assert len(family.embedding_widths) == len(family.text_encoders)
    assert FAMILIES["sdxl"].pipeline_class("inpaint") is diffusers.StableDiffusionXLInpaintPipeline
    assert FAMILIES["sd1"].pipeline_class("img2img") is diffusers.StableDiffusionImg2ImgPipeline


def test_the_old_tables_come_from_the_records():
    from pipelines.adapters.catalog import ADAPTERS
    from pipelines.dreambooth.config import DEFAULT_RESOLUTION
    from pipelines.prompts import embedding_widths

    assert DEFAULT_RESOLUTION == {"sdxl": 1024, "sd2": 768, "shapes": 128, "sd1": 512}
    assert {key: set(table) for key, table in ADAPTERS.items()} == \
        {key: set(f.adapters) for key, f in FAMILIES.items() if f.adapters}
    assert embedding_widths("sdxl") == (768, 1280) and embedding_widths("shapes") == (128,)


def test_a_family_without_a_mode_or_a_record_is_refused_by_name(registry):
    with pytest.raises(InvalidRequest, match="SD 2.x models have no T2I-Adapter pipeline"):
        FAMILIES["sd2"].pipeline_class("adapter")
    with pytest.raises(InvalidRequest) as caught:
        get_family("sd35")
    assert caught.value.field == "model" and all(key in str(caught.value) for key in FAMILIES)
    with pytest.raises(InvalidRequest, match="unknown model family 'flux'"):
        ModelSpec("odd", "flux", "nowhere").limits


def test_folders_are_told_apart_by_their_text_width(tmp_path):
    assert family_of_diffusers_folder(SHAPES_DIR) == "shapes"
    folder = tmp_path / "tiny-xl"
    pipeline_from(tiny_components("sdxl")).save_pretrained(str(folder))
    assert family_of_diffusers_folder(folder) == "sdxl"


def test_a_new_family_is_one_record(monkeypatch, tmp_path):
    """A family the studio has never heard of (a tiny SD 1.x-shaped model, 32-wide text) becomes usable, with
    its own limits, for text to image and image to image, by adding its record and nothing else."""
    from diffusers import AutoencoderKL

    components = tiny_components("sd1", seed=2)
    components["vae"] = AutoencoderKL(block_out_channels=(8, 8, 16, 16), layers_per_block=1, norm_num_groups=8,
                                      down_block_types=("DownEncoderBlock2D",) * 4,
                                      up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4).eval()
    models = tmp_path / "models"
    pipeline_from(components).save_pretrained(str(models / "tiny"))
    before = PipelineRegistry(models_dir=models, outputs_dir=tmp_path / "out", device="cpu", save_outputs=False)
    assert "tiny" not in before.model_names()  # unrecognised: refused, not taken for the shapes model
    tiny = replace(FAMILIES["sd1"], key="tiny", label="tiny test", text_width=32, embedding_widths=(32,),
                   adapters={}, limits=replace(FAMILIES["sd1"].limits, min_size=64, max_size=128,
                                               default_width=64, default_height=64))
    monkeypatch.setitem(FAMILIES, "tiny", tiny)
    registry = PipelineRegistry(models_dir=models, outputs_dir=tmp_path / "out", device="cpu", save_outputs=False)
    assert registry.model_info("tiny").family == "tiny" and registry.limits("tiny").max_size == 128
    with pytest.raises(InvalidRequest, match="from 64 to 128"):
        registry.generate(GenerationRequest(prompt="a red circle", model="tiny", width=256, height=64))
    text = registry.generate(GenerationRequest(prompt="a red circle", model="tiny", width=64, height=64, steps=2,
                                               seed=1))
    picture = registry.generate(GenerationRequest(prompt="a red circle", model="tiny", width=64, height=64, steps=2,
                                                  seed=1, init_image=text.images[0], denoising_strength=0.5))
    assert text.images[0].size == picture.images[0].size == (64, 64)

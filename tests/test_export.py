"""Export to one original-layout file: loading it back (diffusers' own from_single_file, and ours) gives
images identical to the folder it came from; a base plus a LoRA exports with the LoRA folded in."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from dreambooth_support import SHAPES, images, load_shapes, pipeline_from, random_lora

from pipelines.checkpoints.export import export_components, fuse_loras
from pipelines.checkpoints.single_file import detect_family, load_single_file
from pipelines.dreambooth.sidecar import read_sidecar
from pipelines.loras import lora_scope


@pytest.fixture(scope="module")
def shapes():
    return load_shapes()


@pytest.fixture(scope="module")
def exported(shapes, tmp_path_factory):
    target = tmp_path_factory.mktemp("export") / "shapes-export.safetensors"
    return export_components(shapes, target, dtype="fp16", sidecar={"trigger_words": ["a red circle"]})


def test_exported_file_loads_in_diffusers_with_identical_images(shapes, exported):
    from diffusers import StableDiffusionPipeline

    reference = images(pipeline_from(shapes), size=64, steps=3)
    theirs = StableDiffusionPipeline.from_single_file(str(exported), config=str(SHAPES), local_files_only=True,
                                                      dtype=torch.float32)
    assert np.array_equal(images(pipeline_from(theirs.components), size=64, steps=3), reference)
    ours = load_single_file(exported)  # detects the shapes family, finds its configs itself
    assert np.array_equal(images(pipeline_from(ours), size=64, steps=3), reference)


def test_export_writes_family_and_trigger_words(exported):
    assert detect_family(exported) == "shapes"
    facts = read_sidecar(exported)
    assert facts["family"] == "shapes" and facts["trigger_words"] == ["a red circle"]
    assert not list(exported.parent.glob(".*.tmp"))  # written atomically: no temporary left behind


def test_export_refuses_a_wrong_suffix(shapes, tmp_path):
    with pytest.raises(ValueError, match="safetensors"):
        export_components(shapes, tmp_path / "model.ckpt")


def test_base_plus_lora_exports_with_the_lora_folded_in(tmp_path):
    lora = random_lora(load_shapes()["unet"], tmp_path / "lora", seed=1)
    base = pipeline_from(load_shapes())
    with lora_scope(base, [(str(lora), 0.8)]):
        with_lora = images(base, size=64, steps=3)
    fused = pipeline_from(load_shapes())
    fuse_loras(fused, [(lora, 0.8)])
    target = export_components(fused.components, tmp_path / "fused.safetensors", dtype="fp32")
    loaded = images(pipeline_from(load_single_file(target)), size=64, steps=3)
    assert np.abs(loaded - with_lora).max() < 2e-3  # folding W + s*BA changes only float rounding
    assert np.abs(loaded - images(base, size=64, steps=3)).max() > 0.05  # and the LoRA is really in it

"""Original-layout single files: SD 1.x / 2.x / XL are told apart by their weight names and load back,
offline, to the very same weights and images."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from dreambooth_support import CONFIGS, config_only_folder, images, pipeline_from, tiny_components

from pipelines.checkpoints.export import export_components, original_state_dict
from pipelines.checkpoints.single_file import UnsupportedCheckpoint, detect_family, load_single_file

FAMILIES = ("sd1", "sd2", "sdxl")
EXPECTED_KEYS = {  # names other studios look for, with the shapes the original layout uses
    "sd1": {"cond_stage_model.transformer.text_model.final_layer_norm.weight": (32,),
            "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (32, 32),
            "model.diffusion_model.output_blocks.2.1.conv.weight": (64, 64, 3, 3)},
    "sd2": {"cond_stage_model.model.transformer.resblocks.1.attn.in_proj_weight": (96, 32),
            "cond_stage_model.model.positional_embedding": (77, 32),
            "model.diffusion_model.input_blocks.1.1.proj_in.weight": (32, 32)},
    "sdxl": {"conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight": (49408, 32),
             "conditioner.embedders.1.model.text_projection": (64, 64),
             "model.diffusion_model.label_emb.0.0.weight": (128, 6 * 8 + 64),
             "model.diffusion_model.output_blocks.2.2.conv.weight": (64, 64, 3, 3)},
}
COMMON_KEYS = {"first_stage_model.encoder.mid.attn_1.q.weight": (16, 16, 1, 1),
               "first_stage_model.decoder.up.1.upsample.conv.weight": (16, 16, 3, 3),
               "model.diffusion_model.input_blocks.3.0.op.weight": (32, 32, 3, 3),
               "model.diffusion_model.middle_block.2.in_layers.2.weight": (64, 64, 3, 3)}


@pytest.fixture(scope="module", params=FAMILIES)
def tiny(request, tmp_path_factory):
    family = request.param
    components = tiny_components(family)
    folder = tmp_path_factory.mktemp(family)
    path = export_components(components, folder / f"tiny-{family}.safetensors", dtype="fp32")
    return family, components, path, config_only_folder(components, folder / "config")


def test_original_names_and_shapes(tiny):
    family, components, _, _ = tiny
    state = original_state_dict(components)
    for key, shape in {**EXPECTED_KEYS[family], **COMMON_KEYS}.items():
        assert key in state, key
        assert tuple(state[key].shape) == shape, key
    weights = sum(v.numel() for m in components.values() if isinstance(m, torch.nn.Module)
                  for v in m.state_dict().values())
    assert sum(v.numel() for v in state.values()) == weights  # nothing dropped, nothing duplicated


def test_detect_family_tells_them_apart(tiny):
    family, _, path, _ = tiny
    assert detect_family(path) == family


def test_round_trip_gives_the_same_weights_and_images(tiny):
    family, components, path, config = tiny
    loaded = load_single_file(path, config_dir=config, dtype=torch.float32)
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        if components.get(name) is None:
            continue
        ours, theirs = components[name].state_dict(), loaded[name].state_dict()
        assert set(ours) == set(theirs), name
        assert all(torch.equal(ours[k], theirs[k]) for k in ours), name
    assert np.array_equal(images(pipeline_from(components)), images(pipeline_from(loaded)))


def test_shipped_configs_describe_the_real_models():
    """Real-size models built from assets/configs (on the meta device) map to original names that
    diffusers' own converter maps back to every parameter."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint

    from pipelines.checkpoints.unet_vae_layout import unet_to_original, vae_to_original

    expected_unet_parameters = {"sd1": 859_520_964, "sd2": 865_910_724, "sdxl": 2_567_463_684}
    for family in FAMILIES:
        with init_empty_weights():
            unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(str(CONFIGS / family / "unet")))
            vae = AutoencoderKL.from_config(AutoencoderKL.load_config(str(CONFIGS / family / "vae")))
        assert sum(p.numel() for p in unet.parameters()) == expected_unet_parameters[family]
        back = convert_ldm_unet_checkpoint(unet_to_original(unet.state_dict(), dict(unet.config)), dict(unet.config))
        assert set(back) == set(unet.state_dict()), family
        back = convert_ldm_vae_checkpoint(vae_to_original(vae.state_dict(), dict(vae.config)), dict(vae.config))
        assert set(back) == set(vae.state_dict()), family


def test_not_a_checkpoint_is_named_clearly(tmp_path):
    from safetensors.torch import save_file

    lora = tmp_path / "style.safetensors"
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 32)}, str(lora))
    with pytest.raises(UnsupportedCheckpoint, match="LoRA"):
        detect_family(lora)
    edit = tmp_path / "instruct-pix2pix.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(320, 8, 3, 3)}, str(edit))
    with pytest.raises(UnsupportedCheckpoint, match="8 input channels"):
        detect_family(edit)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x00" * 64)
    with pytest.raises(UnsupportedCheckpoint, match="not a readable"):
        detect_family(broken)


def test_file_kind_tells_checkpoints_from_loras(tiny, tmp_path):
    from dreambooth_support import kohya_from_diffusers, random_lora_state
    from safetensors.torch import save_file

    from pipelines.checkpoints.single_file import file_kind

    _, components, path, _ = tiny
    state = random_lora_state(components["unet"])
    save_file(state, str(tmp_path / "diffusers_lora.safetensors"))
    save_file(kohya_from_diffusers(state), str(tmp_path / "kohya_lora.safetensors"))
    (tmp_path / "notes.safetensors").write_bytes(b"not a safetensors file")
    assert file_kind(path) == "checkpoint"
    assert file_kind(tmp_path / "diffusers_lora.safetensors") == "lora"
    assert file_kind(tmp_path / "kohya_lora.safetensors") == "lora"
    assert file_kind(tmp_path / "notes.safetensors") == "other"

"""Tiny random Stable Diffusion models built from the configs the studio ships (assets/configs/<family>).

Each config keeps everything that decides behaviour (block types, attention layout, v-prediction, SDXL's
added time embedding, the VAE's scaling factor and force_upcast, the tokenizers, the scheduler) and only
shrinks the widths and depths, so a model builds in well under a second and runs in milliseconds. Used by
the parity tests (studio against diffusers' own pipelines), the fast-path tests and the benchmark's tests.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "assets" / "configs"
FAMILIES = ("sd1", "sd2", "sdxl")
TEXT_WIDTH = {"text_encoder": 32, "text_encoder_2": 64}  # SDXL concatenates both: 96


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def unet_config(family: str) -> dict:
    config = _read(CONFIGS / family / "unet" / "config.json")
    blocks = len(config["block_out_channels"])
    config["block_out_channels"] = [32, 32, 64, 64][:blocks] if blocks == 4 else [32, 64, 64][:blocks]
    config.update(layers_per_block=1, norm_num_groups=8, sample_size=8)
    heads = config["attention_head_dim"]  # diffusers reads this legacy name as the number of heads
    config["attention_head_dim"] = [2 if h <= 10 else 4 for h in heads] if isinstance(heads, list) else 2
    layers = config["transformer_layers_per_block"]
    if isinstance(layers, list):
        config["transformer_layers_per_block"] = [min(n, 2) for n in layers]
    if family == "sdxl":
        config["cross_attention_dim"] = TEXT_WIDTH["text_encoder"] + TEXT_WIDTH["text_encoder_2"]
        config["addition_time_embed_dim"] = 8
        config["projection_class_embeddings_input_dim"] = 6 * 8 + TEXT_WIDTH["text_encoder_2"]
    else:
        config["cross_attention_dim"] = TEXT_WIDTH["text_encoder"]
    return config


def vae_config(family: str, **overrides) -> dict:
    config = _read(CONFIGS / family / "vae" / "config.json")
    config.update(block_out_channels=[8, 16, 16, 16], layers_per_block=1, norm_num_groups=4, sample_size=64)
    config.update(overrides)
    return config


def text_config(family: str, name: str):
    from transformers import CLIPTextConfig

    config = _read(CONFIGS / family / name / "config.json")
    width = TEXT_WIDTH[name]
    config.update(hidden_size=width, intermediate_size=2 * width, num_hidden_layers=2, num_attention_heads=2,
                  projection_dim=width)
    for key in ("architectures", "model_type", "_name_or_path"):
        config.pop(key, None)
    return CLIPTextConfig(**config)


def tiny_components(family: str, seed: int = 0, vae_overrides: dict | None = None) -> dict:
    """Random components with `family`'s layout (shrunk), the real tokenizers and the shipped scheduler."""
    import diffusers
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    folder = CONFIGS / family
    torch.manual_seed(seed)
    scheduler_class = getattr(diffusers, _read(folder / "model_index.json")["scheduler"][1])
    components = {
        "scheduler": scheduler_class.from_pretrained(str(folder), subfolder="scheduler"),
        "tokenizer": CLIPTokenizer.from_pretrained(str(folder / "tokenizer")),
        "text_encoder": CLIPTextModel(text_config(family, "text_encoder")),
        "unet": UNet2DConditionModel.from_config(unet_config(family)),
        "vae": AutoencoderKL.from_config(vae_config(family, **(vae_overrides or {}))),
    }
    if family == "sdxl":
        components["tokenizer_2"] = CLIPTokenizer.from_pretrained(str(folder / "tokenizer_2"))
        components["text_encoder_2"] = CLIPTextModelWithProjection(text_config(family, "text_encoder_2"))
    for module in components.values():
        if isinstance(module, torch.nn.Module):
            module.eval()
    return components


def pipeline_class(family: str):
    import diffusers

    return diffusers.StableDiffusionXLPipeline if family == "sdxl" else diffusers.StableDiffusionPipeline


def pipeline_from(family: str, components: dict):
    extra = {} if family == "sdxl" else {"safety_checker": None, "feature_extractor": None,
                                         "requires_safety_checker": False}
    pipe = pipeline_class(family)(**components, **extra)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_model(family: str, folder: Path, seed: int = 0, vae_overrides: dict | None = None) -> Path:
    """A diffusers folder the studio loads by path, with a sidecar naming the family (the tiny text
    width would otherwise not tell SD 1.x from 2.x)."""
    pipeline_from(family, tiny_components(family, seed, vae_overrides)).save_pretrained(str(folder))
    (Path(folder) / "studio.json").write_text(json.dumps({"family": family}))
    return Path(folder)


def load_diffusers(family: str, folder: Path, dtype: torch.dtype):
    """diffusers' own pipeline read from the same folder, as a user of diffusers would load it."""
    extra = {} if family == "sdxl" else {"safety_checker": None, "requires_safety_checker": False}
    pipe = pipeline_class(family).from_pretrained(str(folder), dtype=dtype, local_files_only=True, **extra)
    pipe.set_progress_bar_config(disable=True)
    return pipe

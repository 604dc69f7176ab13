"""Random-weight Stable Diffusion 1.5 and XL models (and one T2I-Adapter each) for timing, built once from the
configs in assets/configs and kept under runs/bench/ (speed does not depend on the weights' values).

The weights are random but tame (unit-variance activations, norms at 1/0), saved in float16 like the real
checkpoints; the studio and diffusers both read them from the same folder. The adapters are written into a
Hugging Face cache folder of the benchmark's own (HF_HUB_CACHE for its workers) under the repository names
the studio's adapter catalog asks for, so the studio finds them exactly where real downloads would be.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "assets" / "configs"
ROOT = REPO / "runs" / "bench"
HF_CACHE = ROOT / "hf-cache"
FAMILY_OF = {"sd15": "sd1", "sdxl": "sdxl"}
ADAPTER_REPO = {"sd15": "TencentARC/t2iadapter_sketch_sd15v2", "sdxl": "TencentARC/t2i-adapter-sketch-sdxl-1.0"}


def model_dir(key: str) -> Path:
    return ROOT / "models" / f"{key}-random"


@torch.no_grad()
def _tame(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Weights ~ N(0, 1/fan_in), biases 0, norms 1/0: activations stay near unit scale in any precision."""
    generator = torch.Generator().manual_seed(seed)
    for name, param in module.named_parameters():
        if param.ndim <= 1:
            param.copy_(torch.ones_like(param) if name.endswith("weight") else torch.zeros_like(param))
        else:
            fan_in = math.prod(param.shape[1:])
            std = 0.02 if "embedding" in name else 1 / math.sqrt(fan_in)
            param.copy_(torch.randn(param.shape, generator=generator, dtype=torch.float32).to(param.dtype) * std)
    return module


def _unet(family: str):
    from diffusers import UNet2DConditionModel

    config = UNet2DConditionModel.load_config(str(CONFIGS / family / "unet"))
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config)
    # built on the meta device and cast there, so SDXL's 2.6B parameters never exist in float32
    unet = unet.to(torch.float16).to_empty(device="cpu")
    assert not list(unet.named_buffers()), "to_empty leaves buffers uninitialised"  # none in SD UNets
    return _tame(unet, 0)


def build_model(key: str) -> Path:
    """The random model folder for `key` ("sd15" or "sdxl"), built on first use."""
    import diffusers
    from diffusers import AutoencoderKL
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    folder = model_dir(key)
    if (folder / "model_index.json").exists():
        return folder
    family = FAMILY_OF[key]
    source = CONFIGS / family
    index = json.loads((source / "model_index.json").read_text())
    scheduler = getattr(diffusers, index["scheduler"][1]).from_pretrained(str(source), subfolder="scheduler")
    parts = {"scheduler": scheduler, "unet": _unet(family),
             "vae": _tame(AutoencoderKL.from_config(AutoencoderKL.load_config(str(source / "vae"))), 1).half(),
             "tokenizer": CLIPTokenizer.from_pretrained(str(source / "tokenizer"))}
    text = CLIPTextConfig.from_pretrained(str(source / "text_encoder"))
    parts["text_encoder"] = _tame(CLIPTextModel(text), 2).half()
    if family == "sdxl":
        parts["tokenizer_2"] = CLIPTokenizer.from_pretrained(str(source / "tokenizer_2"))
        text_2 = CLIPTextConfig.from_pretrained(str(source / "text_encoder_2"))
        parts["text_encoder_2"] = _tame(CLIPTextModelWithProjection(text_2), 3).half()
        pipe = diffusers.StableDiffusionXLPipeline(**parts)
    else:
        pipe = diffusers.StableDiffusionPipeline(**parts, safety_checker=None, feature_extractor=None,
                                                 requires_safety_checker=False)
    partial = folder.with_name(folder.name + ".partial")
    pipe.save_pretrained(str(partial))
    partial.rename(folder)
    return folder


def build_adapter(key: str) -> Path:
    """A random sketch T2I-Adapter for `key`'s layout, in the benchmark's Hugging Face cache."""
    from diffusers import T2IAdapter

    repo = ADAPTER_REPO[key]
    revision = "0" * 40
    snapshot = HF_CACHE / f"models--{repo.replace('/', '--')}" / "snapshots" / revision
    if (snapshot / "config.json").exists():
        return snapshot
    if key == "sdxl":  # TencentARC's SDXL adapters: full_adapter_xl, 16x down, RGB input
        adapter = T2IAdapter(in_channels=3, channels=[320, 640, 1280, 1280], num_res_blocks=2,
                             downscale_factor=16, adapter_type="full_adapter_xl")
    else:
        adapter = T2IAdapter(in_channels=1, channels=[320, 640, 1280, 1280], num_res_blocks=2,
                             downscale_factor=8, adapter_type="full_adapter")
    _tame(adapter, 4).half().save_pretrained(str(snapshot))
    refs = snapshot.parent.parent / "refs"
    refs.mkdir(parents=True, exist_ok=True)
    (refs / "main").write_text(revision)
    return snapshot


def prepare(keys) -> dict[str, Path]:
    """Every random model (and its adapter) the benchmark needs; built once, then reused."""
    return {key: (build_model(key), build_adapter(key))[0] for key in keys if key in FAMILY_OF}

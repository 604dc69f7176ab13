"""Fetching a built-in model's weights: `python -m studio download KEY` (needs the network).

Only the files a diffusers pipeline loads are fetched (configs, tokenizers, one weight file per
component), not the repository's extra full checkpoints or its safety checker. `variant="fp16"` fetches
the half-precision files: half the download, and they load in float32 too (weights are cast on load).
"""
from __future__ import annotations

from pathlib import Path

from pipelines.catalog import HUB_MODELS

COMPONENT_FOLDERS = ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler")
VARIANTS = (None, "fp16")


def allow_patterns(variant: str | None) -> list[str]:
    patterns = ["model_index.json"]
    for folder in COMPONENT_FOLDERS:
        patterns += [f"{folder}/*.json", f"{folder}/*.txt"]
        if variant:
            patterns.append(f"{folder}/*.{variant}.safetensors")
        else:
            patterns += [f"{folder}/diffusion_pytorch_model.safetensors", f"{folder}/model.safetensors"]
    return patterns


def download_model(key: str, models_dir: str | Path | None = None, *, variant: str | None = None,
                   cache_dir: str | Path | None = None, token: str | None = None) -> str:
    """Download a catalog model (sd15, sd21, sdxl) and return the folder holding it.

    With `models_dir`, the files land in `<models_dir>/<key>` (found there by the catalog); without it,
    in the Hugging Face cache (`cache_dir`, default HF_HOME's).
    """
    if key not in HUB_MODELS:
        raise ValueError(f"model: {key!r} is not a downloadable catalog model; choose one of: {', '.join(HUB_MODELS)}")
    if variant not in VARIANTS:
        raise ValueError(f"variant: must be one of {VARIANTS}, got {variant!r}")
    from huggingface_hub import snapshot_download

    local_dir = str(Path(models_dir) / key) if models_dir is not None else None
    return snapshot_download(HUB_MODELS[key].repo_id, local_dir=local_dir, allow_patterns=allow_patterns(variant),
                             cache_dir=cache_dir, token=token)

"""Original-layout single files (A1111 / Civitai / the original repos): tell SD 1.x, 2.x and XL apart from
their weight names, and load them offline with the diffusers configs shipped in assets/configs/<family>.

Telling them apart: SDXL has a second text encoder (`conditioner.embedders.1`) and a `label_emb` in its
UNet; SD 2.x uses OpenCLIP (`cond_stage_model.model.`) and 1024-wide cross-attention; SD 1.x uses OpenAI
CLIP (`cond_stage_model.transformer.`) and 768-wide cross-attention. The bundled shapes model has the SD 1.x
layout with its own small text encoder, recognised by that encoder's shape.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from pipelines.checkpoints.safe_ckpt import is_pickle_checkpoint, load_pickled_state_dict

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIRS = {"sd1": REPO_ROOT / "assets" / "configs" / "sd1", "sd2": REPO_ROOT / "assets" / "configs" / "sd2",
               "sdxl": REPO_ROOT / "assets" / "configs" / "sdxl", "shapes": REPO_ROOT / "assets" / "shapes"}
FAMILIES = tuple(CONFIG_DIRS)

_UNET = "model.diffusion_model."
_CONV_IN = _UNET + "input_blocks.0.0.weight"
_SDXL_KEYS = ("conditioner.embedders.1.model.positional_embedding", _UNET + "label_emb.0.0.weight")
_CLIP_TOKENS = "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"
_OPENCLIP_PREFIX = "cond_stage_model.model."
_FIRST_CROSS_ATTENTION = _UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"


class UnsupportedCheckpoint(ValueError):
    """The file is not an SD 1.x / 2.x / XL text-to-image checkpoint this studio can load."""


def _header(path: Path, allow_ckpt: bool) -> tuple[list[str], Callable[[str], tuple[int, ...]]]:
    """Weight names and a shape lookup, reading only the header of a .safetensors file."""
    if is_pickle_checkpoint(path):
        tensors = load_pickled_state_dict(path, allow_ckpt=allow_ckpt)
        return list(tensors), lambda key: tuple(tensors[key].shape)
    if path.suffix.lower() != ".safetensors":
        raise UnsupportedCheckpoint(f"{path.name}: expected a .safetensors (or, opted in, a .ckpt) file")
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            keys = list(handle.keys())
            shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in keys
                      if key in (_CONV_IN, _CLIP_TOKENS, _FIRST_CROSS_ATTENTION)}
    except SafetensorError as error:
        raise UnsupportedCheckpoint(f"{path.name}: not a readable .safetensors file ({error})") from None
    return keys, lambda key: shapes[key]


def family_from_keys(keys, shape_of: Callable[[str], tuple[int, ...]], name: str = "checkpoint") -> str:
    keys = set(keys)
    if _CONV_IN not in keys:
        hint = " (it looks like a LoRA: use it with --lora)" if any("lora" in k for k in keys) else ""
        raise UnsupportedCheckpoint(f"{name}: no Stable Diffusion UNet weights ({_UNET}*) in it{hint}")
    in_channels = shape_of(_CONV_IN)[1]
    if in_channels != 4:
        raise UnsupportedCheckpoint(f"{name}: its UNet takes {in_channels} input channels (an inpainting or "
                                    "edit model); only 4-channel text-to-image checkpoints are supported")
    if any(k in keys for k in _SDXL_KEYS):
        return "sdxl"
    if any(k.startswith("conditioner.embedders.0.model.") for k in keys):
        raise UnsupportedCheckpoint(f"{name}: an SDXL refiner; only SDXL base checkpoints are supported")
    context = shape_of(_FIRST_CROSS_ATTENTION)[-1] if _FIRST_CROSS_ATTENTION in keys else None
    if any(k.startswith(_OPENCLIP_PREFIX) for k in keys) or context == 1024:
        return "sd2"
    if _CLIP_TOKENS in keys and _is_shapes_encoder(shape_of(_CLIP_TOKENS)):
        return "shapes"
    return "sd1"


def _is_shapes_encoder(token_embedding_shape: tuple[int, ...]) -> bool:
    config_file = CONFIG_DIRS["shapes"] / "text_encoder" / "config.json"
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError):
        return False
    return tuple(token_embedding_shape) == (config.get("vocab_size"), config.get("hidden_size"))


def detect_family(path: str | Path, *, allow_ckpt: bool = False) -> str:
    """"sd1" | "sd2" | "sdxl" | "shapes" from the weight names (a .safetensors header is all it reads).
    Raises UnsupportedCheckpoint for other files, CheckpointRefused for a .ckpt without the opt-in."""
    path = Path(path)
    keys, shape_of = _header(path, allow_ckpt)
    return family_from_keys(keys, shape_of, path.name)


_LORA_MARKERS = ("lora_down", "lora_up", "lora_A", "lora_B", "lora_unet_", "lora_te", ".alpha")


def file_kind(path: str | Path) -> str:
    """"checkpoint" (a whole model), "lora" (kohya / A1111 / diffusers LoRA) or "other", from the names in a
    .safetensors header alone (cheap enough for scanning a models folder; Civitai LoRAs carry no sidecar)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        return "other"
    try:
        with safe_open(str(path), framework="pt") as handle:
            keys = list(handle.keys())
    except (OSError, SafetensorError):
        return "other"
    if _CONV_IN in keys:
        return "checkpoint"
    if keys and all(any(marker in key for marker in _LORA_MARKERS) for key in keys):
        return "lora"
    return "other"


def read_sidecar(path: str | Path) -> dict:
    """`<name>.studio.json` beside a file: trigger words, base, family, prediction type."""
    from pipelines.dreambooth.sidecar import read_sidecar as read

    return read(Path(path))


def load_single_file(path: str | Path, *, allow_ckpt: bool = False, dtype=None, family: str | None = None,
                     config_dir: str | Path | None = None) -> dict:
    """The pipeline components (unet, vae, text encoder(s), tokenizer(s), scheduler) of an original-layout
    file, loaded offline. `family` and `config_dir` override detection (e.g. for a custom architecture);
    a sidecar's "family" and "prediction_type" are honoured."""
    import torch
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    sidecar = read_sidecar(path)
    family = family or (sidecar.get("family") if sidecar.get("family") in FAMILIES else None)
    if is_pickle_checkpoint(path):
        # Vetted here with the weights-only unpickler (refused without the opt-in) before diffusers reads it.
        tensors = load_pickled_state_dict(path, allow_ckpt=allow_ckpt)
        family = family or family_from_keys(tensors, lambda key: tuple(tensors[key].shape), path.name)
        del tensors
    family = family or detect_family(path)
    if family not in FAMILIES:
        raise UnsupportedCheckpoint(f"family must be one of {list(FAMILIES)}, got {family!r}")
    config_dir = Path(config_dir) if config_dir else CONFIG_DIRS[family]
    pipeline_class = StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline
    pipeline = pipeline_class.from_single_file(str(path), config=str(config_dir), local_files_only=True,
                                               dtype=dtype or torch.float32)
    components = dict(pipeline.components)
    prediction_type = sidecar.get("prediction_type")
    if prediction_type:
        scheduler = components["scheduler"]
        components["scheduler"] = type(scheduler).from_config(scheduler.config, prediction_type=prediction_type)
    return components

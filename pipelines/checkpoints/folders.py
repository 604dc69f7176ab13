"""Load a model given as a path, whatever its shape on disk: a diffusers folder (as train_dreambooth.py or
`save_pretrained` writes it), one of train_dreambooth.py's `checkpoint-N` folders (a UNet, sometimes a text
encoder, whose other parts come from the folder above), or an original-layout single file.
"""
from __future__ import annotations

from pathlib import Path

from pipelines.checkpoints.safe_ckpt import PICKLE_SUFFIXES


def is_training_checkpoint(path: Path) -> bool:
    return path.is_dir() and (path / "unet" / "config.json").exists() and not (path / "model_index.json").exists()


def _variant(folder: Path) -> str | None:
    unet = folder / "unet"
    full = [unet / n for n in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")]
    if (unet / "diffusion_pytorch_model.fp16.safetensors").exists() and not any(p.exists() for p in full):
        return "fp16"
    return None


def load_diffusers_folder(folder: Path, dtype) -> dict:
    from diffusers import DiffusionPipeline

    pipeline = DiffusionPipeline.from_pretrained(str(folder), dtype=dtype, local_files_only=True,
                                                 variant=_variant(folder))
    return dict(pipeline.components)


def load_training_checkpoint(folder: Path, dtype, base: str | Path | None = None) -> dict:
    """A `checkpoint-N` folder over the pipeline in `base` (default: the folder above it)."""
    from diffusers import UNet2DConditionModel

    base_folder = Path(base) if base else folder.parent
    if not (base_folder / "model_index.json").exists():
        raise FileNotFoundError(f"{folder.name} holds only some weights; its base model should be a diffusers "
                                f"folder at {base_folder}, which has no model_index.json")
    components = load_diffusers_folder(base_folder, dtype)
    components["unet"] = UNet2DConditionModel.from_pretrained(str(folder / "unet"), dtype=dtype)
    for name in ("text_encoder", "text_encoder_2"):
        if (folder / name / "config.json").exists():
            model_class = type(components[name])
            components[name] = model_class.from_pretrained(str(folder / name), dtype=dtype)
    return components


def text_to_image_pipeline(components: dict, family: str | None = None):
    """A plain SD / SDXL text-to-image pipeline over `components` (shared, not copied; ~1 ms to build): the
    family's (pipelines/families.py) when it is known, else told by a second text encoder."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    shared = {name: components[name] for name in ("vae", "text_encoder", "tokenizer", "unet", "scheduler")}
    if family is not None:
        from pipelines.families import get_family

        cls = get_family(family).pipeline_class("txt2img")
        expected = cls._get_signature_keys(cls)[0]
        extra = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False} \
            if "safety_checker" in expected else {}
        return cls(**shared, **{name: components.get(name) for name in expected if name not in shared
                                 and name not in extra}, **extra)
    if components.get("text_encoder_2") is not None:
        return StableDiffusionXLPipeline(**shared, text_encoder_2=components["text_encoder_2"],
                                         tokenizer_2=components["tokenizer_2"])
    return StableDiffusionPipeline(**shared, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


def load_components(path: str | Path, *, dtype=None, allow_ckpt: bool = False) -> dict:
    """Pipeline components from a path; raises a clear error for anything that is not a model."""
    import torch

    from pipelines.checkpoints.single_file import load_single_file

    path = Path(path)
    dtype = dtype or torch.float32
    if path.is_file() and path.suffix.lower() in (".safetensors", *PICKLE_SUFFIXES):
        return load_single_file(path, allow_ckpt=allow_ckpt, dtype=dtype)
    if path.is_dir() and (path / "model_index.json").exists():
        return load_diffusers_folder(path, dtype)
    if is_training_checkpoint(path):
        return load_training_checkpoint(path, dtype)
    raise FileNotFoundError(f"{path}: not a model (expected a diffusers folder with model_index.json, a "
                            "checkpoint-N folder with unet/, or a .safetensors file)")

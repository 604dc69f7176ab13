"""Scan a models folder: diffusers folders, DreamBooth checkpoint-N folders, single files and LoRAs.

A sidecar `<name>.studio.json` (or `studio.json` inside a folder) may say
{"trigger_words": [...], "base": KEY, "family": "sd1", "type": "lora"}. A .safetensors file without one
is a LoRA when the weight names in its header are LoRA names, a model otherwise.
"""
from __future__ import annotations

from pathlib import Path

from pipelines.catalog import (FAMILIES, HUB_MODELS, LoraSpec, ModelSpec, UnknownFamily, diffusers_variant,
                               family_of_diffusers_folder)
from pipelines.dreambooth.sidecar import read_sidecar

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")
LORA_FILE_NAMES = ("pytorch_lora_weights.safetensors",)


def _words(sidecar: dict) -> tuple[str, ...]:
    words = sidecar.get("trigger_words") or ()
    return tuple(str(w) for w in words) if isinstance(words, (list, tuple)) else (str(words),)


def _family(sidecar: dict, folder: Path) -> str:
    """The sidecar's family, else the one the folder's configs show (UnknownFamily when none does)."""
    family = sidecar.get("family")
    return family if family in FAMILIES else family_of_diffusers_folder(folder)


def single_file_family(path: Path, allow_ckpt: bool = False) -> str:
    """Family of a .safetensors/.ckpt, from its state-dict keys (the checkpoints helper's detector). A .ckpt
    is read (with the weights_only loader) only when allowed; otherwise, and when unreadable, "sd1"."""
    from pipelines.checkpoints.safe_ckpt import is_pickle_checkpoint
    from pipelines.checkpoints.single_file import detect_family

    if is_pickle_checkpoint(path) and not allow_ckpt:
        return "sd1"
    try:
        return detect_family(str(path), allow_ckpt=allow_ckpt)
    except Exception:  # unreadable here; loading it will report the real problem
        return "sd1"


def _is_lora_file(path: Path) -> bool:
    """A LoRA downloaded without a sidecar (Civitai, the hub), told by the weight names in its header."""
    from pipelines.checkpoints.single_file import file_kind

    return file_kind(path) == "lora"


def spec_for_path(path: Path, key: str | None = None, *, allow_ckpt: bool = False) -> ModelSpec | LoraSpec | None:
    """What a path in the models folder (or given as --model) is, or None when it is not a model. A .ckpt
    (a pickle) is opened to detect its family only with `allow_ckpt`."""
    key = key or (path.stem if path.is_file() else path.name)
    sidecar = read_sidecar(path)
    if path.is_dir():
        if any((path / name).exists() for name in LORA_FILE_NAMES) or sidecar.get("type") == "lora":
            lora_file = next((path / n for n in LORA_FILE_NAMES if (path / n).exists()), path)
            return LoraSpec(key, str(lora_file), sidecar.get("base"), _words(sidecar))
        if (path / "model_index.json").exists():
            return ModelSpec(key, _family(sidecar, path), str(path), "diffusers",
                             variant=diffusers_variant(path), base=sidecar.get("base"),
                             trigger_words=_words(sidecar), description=f"diffusers folder {path.name}")
        unet = path / "unet" if (path / "unet" / "config.json").exists() else None
        if unet is not None:  # a UNet-only training checkpoint: the rest comes from its base
            base = sidecar.get("base") or _parent_model(path)
            return ModelSpec(key, _family(sidecar, path), str(path), "diffusers",
                             available=base is not None, base=base, unet_path=str(unet),
                             trigger_words=_words(sidecar), description=f"UNet checkpoint {path.name}")
        return None
    if path.suffix.lower() in SINGLE_FILE_SUFFIXES:
        if sidecar.get("type") == "lora" or (not sidecar.get("type") and _is_lora_file(path)):
            return LoraSpec(key, str(path), sidecar.get("base"), _words(sidecar))
        family, description = sidecar.get("family"), f"single file {path.name}"
        if family not in FAMILIES:
            family = single_file_family(path, allow_ckpt)
            if path.suffix.lower() != ".safetensors" and not allow_ckpt:
                description += (" (family unknown: a .ckpt is not opened without allow_ckpt; limits assume sd1;"
                                " a .studio.json sidecar with \"family\" sets it)")
        return ModelSpec(key, family, str(path), "single_file", base=sidecar.get("base"),
                         trigger_words=_words(sidecar), description=description)
    return None


def _parent_model(checkpoint: Path) -> str | None:
    parent = checkpoint.parent
    return str(parent) if (parent / "model_index.json").exists() else None


def scan_models_dir(models_dir: Path | None, *, allow_ckpt: bool = False) -> tuple[dict[str, ModelSpec], dict[str, LoraSpec]]:
    models: dict[str, ModelSpec] = {}
    loras: dict[str, LoraSpec] = {}
    if models_dir is None or not models_dir.is_dir():
        return models, loras

    def add(spec):
        if spec is None:
            return
        table = loras if isinstance(spec, LoraSpec) else models
        key = spec.key
        if key in HUB_MODELS or key == "shapes":
            key = f"{key}-local"  # a built-in key always means the built-in model
        if key in table:  # e.g. "style.safetensors" beside a "style" folder
            key = Path(spec.source if isinstance(spec, ModelSpec) else spec.path).name
        table[key] = _rekey(spec, key)

    def found(path: Path, key: str | None = None):
        try:
            return spec_for_path(path, key, allow_ckpt=allow_ckpt)
        except UnknownFamily:
            return None  # not listed; given as a path, it is refused with the reason (registry.model_info)

    for entry in sorted(models_dir.iterdir()):
        if entry.name.startswith(".") or entry.name in HUB_MODELS:
            continue  # models/<builtin key> holds a built-in model's weights (see catalog.hub_spec)
        add(found(entry))
        if entry.is_dir() and not (entry / LORA_FILE_NAMES[0]).exists():
            for child in sorted(entry.glob("checkpoint-*")):
                if child.is_dir():
                    add(found(child, key=f"{entry.name}/{child.name}"))
    return models, loras


def _rekey(spec, key: str):
    from dataclasses import replace

    return spec if spec.key == key else replace(spec, key=key)

"""The model catalog: stable keys -> where the weights are, which family, and what sizes it allows.

Built-in keys: "shapes" (bundled, the default), "sd15", "sd21", "sdxl". Everything in the models folder
is added (see pipelines/model_scan.py). Scanning only looks at file names and small JSON files.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pipelines.families import FAMILIES as FAMILY_RECORDS
from pipelines.families import REPO_ROOT, SHAPES_DIR, Limits, family_of_text_width, get_family  # noqa: F401

DEFAULT_MODEL = "shapes"


FAMILY_LIMITS = {key: family.limits for key, family in FAMILY_RECORDS.items()}  # public API: key -> Limits
FAMILIES = tuple(FAMILY_RECORDS)


@dataclass(frozen=True)
class ModelSpec:
    key: str
    family: str  # "shapes" | "sd1" | "sd2" | "sdxl"
    source: str  # a local path, or a hub repo id when the weights are not on disk yet
    format: str = "diffusers"  # "diffusers" | "single_file" | "hub"
    available: bool = True
    repo_id: str | None = None  # the hub repository a built-in model comes from
    base: str | None = None  # for a UNet-only checkpoint or a single file: the model giving the rest
    unet_path: str | None = None  # a UNet-only checkpoint folder (DreamBooth checkpoint-N)
    variant: str | None = None  # "fp16" when only *.fp16.safetensors files exist
    trigger_words: tuple[str, ...] = ()
    description: str = ""

    @property
    def limits(self) -> Limits:
        return get_family(self.family).limits


@dataclass(frozen=True)
class LoraSpec:
    key: str
    path: str
    base: str | None = None
    trigger_words: tuple[str, ...] = ()


@dataclass(frozen=True)
class HubModel:
    key: str
    repo_id: str
    family: str
    description: str


HUB_MODELS = {
    "sd15": HubModel("sd15", "stable-diffusion-v1-5/stable-diffusion-v1-5", "sd1", "Stable Diffusion 1.5"),
    "sd21": HubModel("sd21", "stabilityai/stable-diffusion-2-1-base", "sd2", "Stable Diffusion 2.1 base"),
    "sdxl": HubModel("sdxl", "stabilityai/stable-diffusion-xl-base-1.0", "sdxl", "Stable Diffusion XL base 1.0"),
}


def download_hint(key: str) -> str:
    return f"python -m studio download {key}"


def read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def diffusers_variant(folder: Path) -> str | None:
    """"fp16" when the UNet is stored only as a fp16 variant (what `download --variant fp16` fetches)."""
    unet = folder / "unet"
    if (unet / "diffusion_pytorch_model.fp16.safetensors").exists() and not any(
            (unet / name).exists() for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")):
        return "fp16"
    return None


class UnknownFamily(ValueError):
    """A diffusers folder whose UNet no family record describes."""


def family_of_diffusers_folder(folder: Path) -> str:
    """Family from the saved configs: the text width the UNet attends to (pipelines/families.py); a folder
    no family record matches is refused (a studio.json sidecar with "family" can name it)."""
    index = read_json(folder / "model_index.json")
    unet_dir = folder / "unet" if (folder / "unet").is_dir() else folder
    width = read_json(unet_dir / "config.json").get("cross_attention_dim")
    family = family_of_text_width(width, str(index.get("_class_name", "")))
    if family is None:
        raise UnknownFamily(f"{folder.name}: its UNet attends to {width!r}-wide text, which no model family here "
                            f"has ({', '.join(f'{k}: {f.text_width}' for k, f in FAMILY_RECORDS.items())}); "
                            'write {"family": KEY} in its studio.json if it is one of them')
    return family


def shapes_spec() -> ModelSpec:
    return ModelSpec(key=DEFAULT_MODEL, family="shapes", source=str(SHAPES_DIR), format="diffusers",
                     available=(SHAPES_DIR / "model_index.json").exists(),
                     description="Bundled shapes model (128x128)")


def hub_spec(model: HubModel, models_dir: Path | None) -> ModelSpec:
    """A built-in hub model: the models folder copy wins, then the Hugging Face cache, else absent."""
    local = models_dir / model.key if models_dir is not None else None
    if local is not None and (local / "model_index.json").exists():
        return ModelSpec(model.key, model.family, str(local), "diffusers", True, model.repo_id,
                         variant=diffusers_variant(local), description=model.description)
    cached = cached_snapshot(model.repo_id)
    if cached is not None:
        return ModelSpec(model.key, model.family, cached, "diffusers", True, model.repo_id,
                         variant=diffusers_variant(Path(cached)), description=model.description)
    return ModelSpec(model.key, model.family, model.repo_id, "hub", False, model.repo_id,
                     description=model.description)


def cached_snapshot(repo_id: str) -> str | None:
    """The local snapshot folder of a hub repo in the HF cache, if its model_index.json is there."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "model_index.json")
    except Exception:  # a malformed cache must not break listing models
        return None
    return str(Path(found).parent) if isinstance(found, str) else None


def builtin_specs(models_dir: Path | None) -> dict[str, ModelSpec]:
    specs = {DEFAULT_MODEL: shapes_spec()}
    for key, model in HUB_MODELS.items():
        specs[key] = hub_spec(model, models_dir)
    return specs

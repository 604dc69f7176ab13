"""Original-layout single files (A1111 / Civitai / the original repos): tell SD 1.x, 2.x and XL apart from
their weight names, and load them offline with the diffusers configs shipped in assets/configs/<family>
(<family>-inpainting for 9-channel inpainting UNets).

Telling them apart is each family record's `detect` (pipelines/families.py): SDXL has a second text encoder
(`conditioner.embedders.1`) and a `label_emb` in its UNet; SD 2.x uses OpenCLIP (`cond_stage_model.model.`)
and 1024-wide cross-attention; the bundled shapes model has the SD 1.x layout with its own small text
encoder, recognised by that encoder's shape; SD 1.x (OpenAI CLIP, 768-wide) is what remains.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from pipelines.checkpoints.safe_ckpt import is_pickle_checkpoint, load_pickled_state_dict
from pipelines.families import CONV_IN, SHAPED_KEYS, UNET_PREFIX, CheckpointKeys, family_of_checkpoint
from pipelines.families import FAMILIES as FAMILY_RECORDS

FAMILIES = tuple(FAMILY_RECORDS)
SUPPORTED_IN_CHANNELS = {4: "text-to-image", 9: "inpainting"}


class UnsupportedCheckpoint(ValueError):
    """The file is not an SD 1.x / 2.x / XL checkpoint (text-to-image or inpainting) this studio can load."""


def _header(path: Path, allow_ckpt: bool) -> CheckpointKeys:
    """Weight names and the shapes detection reads, from only the header of a .safetensors file."""
    if is_pickle_checkpoint(path):
        tensors = load_pickled_state_dict(path, allow_ckpt=allow_ckpt)
        return keys_of(tensors)
    if path.suffix.lower() != ".safetensors":
        raise UnsupportedCheckpoint(f"{path.name}: expected a .safetensors (or, opted in, a .ckpt) file")
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            keys = list(handle.keys())
            shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in keys if key in SHAPED_KEYS}
    except SafetensorError as error:
        raise UnsupportedCheckpoint(f"{path.name}: not a readable .safetensors file ({error})") from None
    return CheckpointKeys(frozenset(keys), shapes)


def keys_of(tensors: dict) -> CheckpointKeys:
    return CheckpointKeys(frozenset(tensors), {key: tuple(tensors[key].shape) for key in SHAPED_KEYS if key in tensors})


def unet_in_channels(keys: CheckpointKeys, name: str = "checkpoint") -> int:
    """4 (text to image) or 9 (inpainting: latents, mask, masked-image latents); others are refused."""
    if CONV_IN not in keys.names:
        hint = " (it looks like a LoRA: use it with --lora)" if any("lora" in k for k in keys.names) else ""
        raise UnsupportedCheckpoint(f"{name}: no Stable Diffusion UNet weights ({UNET_PREFIX}*) in it{hint}")
    in_channels = keys.shapes[CONV_IN][1]
    if in_channels not in SUPPORTED_IN_CHANNELS:
        raise UnsupportedCheckpoint(f"{name}: its UNet takes {in_channels} input channels (an edit or depth "
                                    "model); text-to-image (4) and inpainting (9) checkpoints are supported")
    return in_channels


def family_from_keys(keys, shape_of: Callable[[str], tuple[int, ...]] | None = None, name: str = "checkpoint") -> str:
    """The family record whose `detect` accepts these weight names (pipelines/families.py, in order)."""
    if not isinstance(keys, CheckpointKeys):
        names = frozenset(keys)
        keys = CheckpointKeys(names, {key: tuple(shape_of(key)) for key in SHAPED_KEYS if key in names})
    unet_in_channels(keys, name)
    if keys.prefixed("conditioner.embedders.0.model.") and not FAMILY_RECORDS["sdxl"].detect(keys):
        raise UnsupportedCheckpoint(f"{name}: an SDXL refiner; only SDXL base checkpoints are supported")
    return family_of_checkpoint(keys)


def detect_family(path: str | Path, *, allow_ckpt: bool = False) -> str:
    """"sd1" | "sd2" | "sdxl" | "shapes" from the weight names (a .safetensors header is all it reads).
    Raises UnsupportedCheckpoint for other files, CheckpointRefused for a .ckpt without the opt-in."""
    path = Path(path)
    return family_from_keys(_header(path, allow_ckpt), name=path.name)


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
    if CONV_IN in keys:
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

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    sidecar = read_sidecar(path)
    family = family or (sidecar.get("family") if sidecar.get("family") in FAMILIES else None)
    # A pickle is vetted here by the weights-only unpickler (refused without the opt-in) before diffusers reads it.
    keys = _header(path, allow_ckpt)
    in_channels = unet_in_channels(keys, path.name)
    family = family or family_from_keys(keys, name=path.name)
    if family not in FAMILIES:
        raise UnsupportedCheckpoint(f"family must be one of {list(FAMILIES)}, got {family!r}")
    record = FAMILY_RECORDS[family]
    config_dir = Path(config_dir) if config_dir else record.single_file_config(in_channels)
    # The components are those of the family's text-to-image pipeline; a 9-channel UNet is one of them.
    pipeline = record.pipeline_class("txt2img").from_single_file(str(path), config=str(config_dir),
                                                                 local_files_only=True, dtype=dtype or torch.float32)
    components = dict(pipeline.components)
    prediction_type = sidecar.get("prediction_type")
    if prediction_type:
        scheduler = components["scheduler"]
        components["scheduler"] = type(scheduler).from_config(scheduler.config, prediction_type=prediction_type)
    return components

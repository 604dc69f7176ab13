"""Training checkpoints: `<out>/checkpoint-N/`, each complete or absent (written beside, then renamed).

A LoRA checkpoint holds `pytorch_lora_weights.safetensors` (loadable as a LoRA, as train_dreambooth_lora.py
writes it); a full fine-tune one holds `unet/` (loadable as a model over its base, as train_dreambooth.py
writes it). Both add the exact trainable tensors' optimizer state and `training_state.json` (step, loss,
and the settings the run was started with), which is what resuming needs.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from pipelines.dreambooth.sidecar import atomic_write_text, write_sidecar

STATE_FILE = "training_state.json"
TRAINABLE_FILE = "trainable.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
LORA_FILE = "pytorch_lora_weights.safetensors"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def checkpoints(out: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints in `out`, oldest first."""
    out = Path(out)
    found = []
    if out.is_dir():
        for path in out.iterdir():
            match = _CHECKPOINT.match(path.name)
            if match and path.is_dir() and (path / STATE_FILE).exists():
                found.append((int(match[1]), path))
    return sorted(found)


def read_state(checkpoint: Path) -> dict:
    return json.loads((checkpoint / STATE_FILE).read_text(encoding="utf-8"))


def lora_weights_for_diffusers(unet) -> dict:
    """The UNet's LoRA tensors under PEFT's names (`<module>.lora_A/lora_B.weight`), every one of them.
    Not through convert_state_dict_to_diffusers: that renames only to_q/k/v/out.0 to the old
    `lora.down/up`, and load_lora_weights, seeing a mix, converts nothing and drops the attention tensors."""
    from peft.utils import get_peft_model_state_dict

    return get_peft_model_state_dict(unet)


def save_lora_file(unet, family: str, folder: Path) -> None:
    from pipelines.families import get_family

    saver = get_family(family).pipeline_class("txt2img")  # its LoRA file layout (SDXL's names its encoders)
    saver.save_lora_weights(str(folder), unet_lora_layers=lora_weights_for_diffusers(unet),
                            weight_name=LORA_FILE, safe_serialization=True)


def save_checkpoint(out: Path, step: int, *, unet, optimizer, method: str, family: str, state: dict,
                    sidecar: dict) -> Path:
    import torch
    from safetensors.torch import save_file

    target = out / f"checkpoint-{step}"
    staging = out / f".checkpoint-{step}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    if method == "lora":
        trainable = {n: p.detach().cpu().contiguous() for n, p in unet.named_parameters() if p.requires_grad}
        save_file(trainable, str(staging / TRAINABLE_FILE))
        save_lora_file(unet, family, staging)
    else:
        unet.save_pretrained(str(staging / "unet"), safe_serialization=True)
    torch.save(optimizer.state_dict(), staging / OPTIMIZER_FILE)
    write_sidecar(staging, sidecar)
    atomic_write_text(staging / STATE_FILE, json.dumps({**state, "step": step}, indent=2, sort_keys=True))
    replace_folder(staging, target)
    return target


def replace_folder(staging: Path, target: Path) -> None:
    """Put `staging` at `target`, replacing what is there as a whole. The old folder is renamed aside before
    it is deleted: deleting it in place, a kill midway left a half-deleted folder under the real name (its
    training_state.json, which marks a checkpoint complete, could outlive the weights beside it)."""
    aside = target.with_name(f".{target.name}.old")
    if target.exists():
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(target, aside)
    os.replace(staging, target)
    shutil.rmtree(aside, ignore_errors=True)


def load_checkpoint(checkpoint: Path, *, unet, optimizer, method: str) -> dict:
    """Put the checkpoint's trainable weights and optimizer state back; returns its training state."""
    import torch
    from safetensors.torch import load_file

    if method == "lora":
        trainable = load_file(str(checkpoint / TRAINABLE_FILE))
        parameters = dict(unet.named_parameters())
        missing = [name for name in trainable if name not in parameters]
        if missing:
            raise ValueError(f"{checkpoint}: its weights do not fit this model (e.g. {missing[0]})")
        with torch.no_grad():
            for name, value in trainable.items():
                parameters[name].copy_(value)
    else:
        from diffusers import UNet2DConditionModel

        saved = UNet2DConditionModel.from_pretrained(str(checkpoint / "unet"), dtype=torch.float32)
        unet.load_state_dict(saved.state_dict())
    optimizer.load_state_dict(torch.load(checkpoint / OPTIMIZER_FILE, map_location="cpu", weights_only=True))
    return read_state(checkpoint)


def prune(out: Path, keep: int | None) -> None:
    """Keep only the newest `keep` checkpoints (None: keep all)."""
    if keep is None:
        return
    for _, path in checkpoints(out)[:-keep] if keep > 0 else checkpoints(out):
        aside = path.with_name(f".{path.name}.old")  # renamed first: a kill mid-delete leaves no half checkpoint
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(path, aside)
        shutil.rmtree(aside, ignore_errors=True)

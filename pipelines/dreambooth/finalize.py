"""The end of a run: the trained model written into `out` so that it appears complete or not at all
(the models scan keys on `pytorch_lora_weights.safetensors` / `model_index.json`, which land last)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from pipelines.dreambooth.resume import LORA_FILE, replace_folder, save_lora_file
from pipelines.dreambooth.sidecar import write_sidecar

STAGING = ".final.tmp"


def save_lora_model(unet, family: str, out: Path, sidecar: dict) -> Path:
    staging = out / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_lora_file(unet, family, staging)
    write_sidecar(out, sidecar)
    os.replace(staging / LORA_FILE, out / LORA_FILE)
    shutil.rmtree(staging, ignore_errors=True)
    return out / LORA_FILE


def save_full_model(unet, components: dict, out: Path, sidecar: dict) -> Path:
    from pipelines.checkpoints.folders import text_to_image_pipeline

    staging = out / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    text_to_image_pipeline({**components, "unet": unet}).save_pretrained(str(staging), safe_serialization=True)
    write_sidecar(out, sidecar)
    entries = sorted(staging.iterdir(), key=lambda p: p.name == "model_index.json")  # the index goes last
    for entry in entries:
        target = out / entry.name
        if entry.is_dir():
            replace_folder(entry, target)  # the old part is renamed aside, never half-deleted in place
        else:
            os.replace(entry, target)
    shutil.rmtree(staging, ignore_errors=True)
    return out

"""Export a diffusers model (a folder, a DreamBooth result, or a base with LoRAs fused in) to one
original-layout .safetensors file that A1111, ComfyUI, Civitai and this studio's single-file loader read.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pipelines.checkpoints.text_layout import CLIP_PREFIXES, OPENCLIP_PREFIXES, clip_to_original, openclip_to_original
from pipelines.checkpoints.unet_vae_layout import unet_to_original, vae_to_original
from pipelines.file_modes import make_publishable

EXPORT_DTYPES = ("fp16", "bf16", "fp32")


def layout_of(components: dict) -> str:
    """Which original layout the components map to: "sdxl" (two encoders), "sd2" (OpenCLIP, whose
    activation is plain GELU), else "sd1" (OpenAI CLIP, quick GELU), which the shapes model shares."""
    if components.get("text_encoder_2") is not None:
        return "sdxl"
    return "sd2" if components["text_encoder"].config.hidden_act == "gelu" else "sd1"


def original_state_dict(components: dict) -> dict:
    """Every weight of the UNet, VAE and text encoder(s) under its original-layout name."""
    unet, vae, text_encoder = components["unet"], components["vae"], components["text_encoder"]
    layout = layout_of(components)
    out = unet_to_original(unet.state_dict(), dict(unet.config))
    out.update(vae_to_original(vae.state_dict(), dict(vae.config)))
    if layout == "sd2":
        out.update(openclip_to_original(text_encoder.state_dict(), OPENCLIP_PREFIXES["sd2"]))
    else:
        out.update(clip_to_original(text_encoder.state_dict(), CLIP_PREFIXES[layout]))
    if layout == "sdxl":
        out.update(openclip_to_original(components["text_encoder_2"].state_dict(), OPENCLIP_PREFIXES["sdxl"]))
    return out


def _torch_dtype(name: str):
    import torch

    dtypes = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
    if name not in dtypes:
        raise ValueError(f"dtype must be one of {list(dtypes)}, got {name!r}")
    return dtypes[name]


def save_safetensors_atomic(tensors: dict, target: Path, metadata: dict | None = None) -> Path:
    """Write to a temporary file beside the target, then rename: a crash never leaves half a file."""
    from safetensors.torch import save_file

    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    try:
        save_file(tensors, temporary, metadata={k: str(v) for k, v in (metadata or {}).items()})
        make_publishable(temporary)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def export_components(components: dict, target: str | Path, *, dtype: str = "fp16", family: str | None = None,
                      sidecar: dict | None = None) -> Path:
    """Save `components` as one original-layout file (+ a `<name>.studio.json` sidecar naming its family,
    trigger words and prediction type, which other studios ignore)."""
    from pipelines.checkpoints.single_file import family_from_keys
    from pipelines.dreambooth.sidecar import write_sidecar

    target = Path(target)
    if target.suffix.lower() != ".safetensors":
        raise ValueError(f"out: the exported file must end in .safetensors, got {target.name!r}")
    torch_dtype = _torch_dtype(dtype)
    tensors = {key: value.detach().to("cpu", torch_dtype).contiguous()
               for key, value in original_state_dict(components).items()}
    family = family or family_from_keys(tensors, lambda key: tuple(tensors[key].shape), target.name)
    save_safetensors_atomic(tensors, target, {"format": "pt", "studio.family": family})
    facts = {"family": family,
             "prediction_type": components["scheduler"].config.get("prediction_type", "epsilon")}
    facts.update(sidecar or {})
    write_sidecar(target, facts)
    return target


def fuse_loras(pipeline, loras) -> None:
    """Fold LoRA weights into the pipeline's own weights (for export; this changes the base for good)."""
    if not loras:
        return
    names = []
    for index, (path, weight) in enumerate(loras):
        name = f"export_{index}"
        pipeline.load_lora_weights(str(path), adapter_name=name)
        names.append((name, float(weight)))
    pipeline.set_adapters([n for n, _ in names], adapter_weights=[w for _, w in names])
    pipeline.fuse_lora(adapter_names=[n for n, _ in names], lora_scale=1.0)
    pipeline.unload_lora_weights()

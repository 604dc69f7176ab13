"""Transformers CLIP text-encoder weight names -> the original layouts.

OpenAI CLIP (SD 1.x, SDXL's first encoder) is stored in the original files with Hugging Face's own names
under a prefix, as `<prefix>text_model.<name>`. OpenCLIP (SD 2.x, SDXL's second encoder) uses its own
names: fused q/k/v `in_proj` matrices, `resblocks`, `ln_1`/`ln_2`, `c_fc`/`c_proj`, and a
`text_projection` matrix stored transposed (x @ P rather than a Linear layer's x @ W.T).
"""
from __future__ import annotations

import re

import torch

CLIP_PREFIXES = {"sd1": "cond_stage_model.transformer.", "sdxl": "conditioner.embedders.0.transformer."}
OPENCLIP_PREFIXES = {"sd2": "cond_stage_model.model.", "sdxl": "conditioner.embedders.1.model."}

_OPENCLIP_FIXED = {"embeddings.token_embedding.weight": "token_embedding.weight",
                   "embeddings.position_embedding.weight": "positional_embedding",
                   "final_layer_norm.weight": "ln_final.weight", "final_layer_norm.bias": "ln_final.bias"}
_OPENCLIP_LAYER_NAMES = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc",
                         "mlp.fc2": "mlp.c_proj", "self_attn.out_proj": "attn.out_proj"}
_LAYER = re.compile(r"^encoder\.layers\.(\d+)\.(.+)\.(weight|bias)$")


def _plain_names(state_dict: dict) -> dict:
    """Transformers 5 flattens CLIPTextModel (no `text_model.`); CLIPTextModelWithProjection keeps it."""
    return {key.removeprefix("text_model."): value for key, value in state_dict.items()}


def clip_to_original(state_dict: dict, prefix: str) -> dict:
    return {f"{prefix}text_model.{key}": value for key, value in _plain_names(state_dict).items()
            if key != "text_projection.weight"}


def openclip_to_original(state_dict: dict, prefix: str) -> dict:
    names = _plain_names(state_dict)
    out = {}
    qkv: dict[tuple[int, str], dict[str, torch.Tensor]] = {}
    for key, value in names.items():
        if key in _OPENCLIP_FIXED:
            out[prefix + _OPENCLIP_FIXED[key]] = value
            continue
        if key == "text_projection.weight":
            out[prefix + "text_projection"] = value.T.contiguous()
            continue
        match = _LAYER.match(key)
        if match is None:
            raise ValueError(f"no OpenCLIP name for text-encoder weight {key!r}")
        layer, module, param = int(match[1]), match[2], match[3]
        if module in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
            qkv.setdefault((layer, param), {})[module[-6]] = value
            continue
        if module not in _OPENCLIP_LAYER_NAMES:
            raise ValueError(f"no OpenCLIP name for text-encoder weight {key!r}")
        out[f"{prefix}transformer.resblocks.{layer}.{_OPENCLIP_LAYER_NAMES[module]}.{param}"] = value
    for (layer, param), parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            raise ValueError(f"text-encoder layer {layer} lacks one of q/k/v {param}")
        fused = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
        out[f"{prefix}transformer.resblocks.{layer}.attn.in_proj_{param}"] = fused
    return out

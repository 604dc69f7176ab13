"""Diffusers UNet / VAE weight names -> the original (CompVis / Stability "ldm") layout that A1111 and
Civitai files use. Written from the structure of both models; diffusers' own ldm->diffusers converter
(loaders/single_file_utils.py) was the reference for what the other side expects.

Original UNet: `input_blocks` is a flat list (conv_in, then for each resolution its resnet[+attention]
layers and a downsampler), `middle_block` is resnet/attention/resnet, `output_blocks` is a flat list of
resnet[+attention][+upsampler] layers. Original VAE: `down.i.block.j`, `mid.block_1/attn_1/block_2`, and
`up.i` numbered from the lowest resolution, the reverse of diffusers' `up_blocks`.
"""
from __future__ import annotations

import re

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."

_UNET_RESNET_NAMES = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
                      "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
_UNET_FIXED = {"conv_in.": "input_blocks.0.0.", "time_embedding.linear_1.": "time_embed.0.",
               "time_embedding.linear_2.": "time_embed.2.", "add_embedding.linear_1.": "label_emb.0.0.",
               "add_embedding.linear_2.": "label_emb.0.2.", "conv_norm_out.": "out.0.", "conv_out.": "out.2.",
               "mid_block.resnets.0.": "middle_block.0.", "mid_block.attentions.0.": "middle_block.1.",
               "mid_block.resnets.1.": "middle_block.2."}


def _layers_per_block(config: dict) -> list[int]:
    per = config["layers_per_block"]
    count = len(config["down_block_types"])
    return list(per) if isinstance(per, (list, tuple)) else [int(per)] * count


def unet_prefix_map(config: dict) -> dict[str, str]:
    """Diffusers module prefix -> original module prefix, for every block the config describes."""
    prefixes = dict(_UNET_FIXED)
    per_block = _layers_per_block(config)
    count = len(per_block)
    index = 1
    for block, layers in enumerate(per_block):
        for layer in range(layers):
            prefixes[f"down_blocks.{block}.resnets.{layer}."] = f"input_blocks.{index}.0."
            prefixes[f"down_blocks.{block}.attentions.{layer}."] = f"input_blocks.{index}.1."
            index += 1
        if block < count - 1:
            prefixes[f"down_blocks.{block}.downsamplers.0.conv."] = f"input_blocks.{index}.0.op."
            index += 1
    index = 0
    for block, (layers, kind) in enumerate(zip(reversed(per_block), config["up_block_types"])):
        for layer in range(layers + 1):
            prefixes[f"up_blocks.{block}.resnets.{layer}."] = f"output_blocks.{index}.0."
            prefixes[f"up_blocks.{block}.attentions.{layer}."] = f"output_blocks.{index}.1."
            index += 1
        if block < count - 1:  # the upsampler sits after the last layer's attention, if it has one
            slot = 2 if "CrossAttn" in kind else 1
            prefixes[f"up_blocks.{block}.upsamplers.0.conv."] = f"output_blocks.{index - 1}.{slot}.conv."
    return prefixes


def _split(key: str, prefixes: dict[str, str]) -> tuple[str, str]:
    """The longest known prefix of `key` and the rest (the modules' own parameter names)."""
    parts = key.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:cut]) + "."
        if head in prefixes:
            return head, key[len(head):]
    raise ValueError(f"no original-layout name for weight {key!r}: the model does not look like an SD UNet/VAE")


def unet_to_original(state_dict: dict, config: dict) -> dict:
    prefixes = unet_prefix_map(config)
    out = {}
    for key, tensor in state_dict.items():
        head, rest = _split(key, prefixes)
        if ".resnets." in head:
            first, _, tail = rest.partition(".")
            rest = f"{_UNET_RESNET_NAMES.get(first, first)}.{tail}"
        out[UNET_PREFIX + prefixes[head] + rest] = tensor
    return out


_VAE_ATTENTION_NAMES = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
_VAE_RULES = [  # (pattern on the diffusers key, replacement builder)
    (re.compile(r"^encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\."), lambda m, n: f"encoder.down.{m[1]}.block.{m[2]}."),
    (re.compile(r"^encoder\.down_blocks\.(\d+)\.downsamplers\.0\."), lambda m, n: f"encoder.down.{m[1]}.downsample."),
    (re.compile(r"^decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\."),
     lambda m, n: f"decoder.up.{n - 1 - int(m[1])}.block.{m[2]}."),
    (re.compile(r"^decoder\.up_blocks\.(\d+)\.upsamplers\.0\."), lambda m, n: f"decoder.up.{n - 1 - int(m[1])}.upsample."),
    (re.compile(r"^(encoder|decoder)\.mid_block\.resnets\.(\d+)\."), lambda m, n: f"{m[1]}.mid.block_{int(m[2]) + 1}."),
    (re.compile(r"^(encoder|decoder)\.mid_block\.attentions\.0\."), lambda m, n: f"{m[1]}.mid.attn_1."),
    (re.compile(r"^(encoder|decoder)\.conv_norm_out\."), lambda m, n: f"{m[1]}.norm_out."),
]


def vae_to_original(state_dict: dict, config: dict) -> dict:
    up_count = len(config["up_block_types"])
    out = {}
    for key, tensor in state_dict.items():
        new = key
        for pattern, build in _VAE_RULES:
            match = pattern.match(key)
            if match:
                new = build(match, up_count) + key[match.end():]
                break
        if ".mid.attn_1." in new:
            head, _, rest = new.rpartition(".mid.attn_1.")
            name, _, param = rest.rpartition(".")
            new = f"{head}.mid.attn_1.{_VAE_ATTENTION_NAMES.get(name, name)}.{param}"
            if param == "weight" and tensor.ndim == 2:  # the original uses 1x1 convolutions
                tensor = tensor[:, :, None, None]
        elif ".block." in new or ".block_" in new:
            new = new.replace(".conv_shortcut.", ".nin_shortcut.")
        out[VAE_PREFIX + new] = tensor
    return out

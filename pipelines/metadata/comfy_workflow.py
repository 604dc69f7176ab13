"""ComfyUI's `workflow` chunk (the editor's graph) turned into the API graph form that comfyui.py reads.

A workflow node keeps its widget values as a list in display order, without their names, so the names of
the core nodes' widgets are listed here (from ComfyUI's nodes.py / comfy_extras). A seed widget is followed
by the editor's "control after generate" value ("randomize", or true/false in older files), which is skipped. Links are [id, from node, from slot,
to node, to slot, type] (or the same as an object); Reroute and bypassed nodes pass their input through,
muted nodes are left out. Nodes of other types keep their values as widget_0, widget_1, ...
"""
from __future__ import annotations

from typing import Any

from pipelines.metadata.settings import Collector

WIDGETS = {
    "KSampler": ("seed", "steps", "cfg", "sampler_name", "scheduler", "denoise"),
    "KSamplerAdvanced": ("add_noise", "noise_seed", "steps", "cfg", "sampler_name", "scheduler", "start_at_step",
                         "end_at_step", "return_with_leftover_noise"),
    "SamplerCustom": ("add_noise", "noise_seed", "cfg"),
    "RandomNoise": ("noise_seed",), "CFGGuider": ("cfg",), "KSamplerSelect": ("sampler_name",),
    "BasicScheduler": ("scheduler", "steps", "denoise"),
    "KarrasScheduler": ("steps", "sigma_max", "sigma_min", "rho"),
    "ExponentialScheduler": ("steps", "sigma_max", "sigma_min"),
    "CheckpointLoaderSimple": ("ckpt_name",), "CheckpointLoader": ("config_name", "ckpt_name"),
    "UNETLoader": ("unet_name", "weight_dtype"),
    "LoraLoader": ("lora_name", "strength_model", "strength_clip"), "LoraLoaderModelOnly": ("lora_name", "strength_model"),
    "CLIPTextEncode": ("text",), "CLIPSetLastLayer": ("stop_at_clip_layer",),
    "CLIPTextEncodeSDXL": ("width", "height", "crop_w", "crop_h", "target_width", "target_height", "text_g",
                           "text_l"),
    "CLIPTextEncodeSDXLRefiner": ("ascore", "width", "height", "text"),
    "EmptyLatentImage": ("width", "height", "batch_size"), "EmptySD3LatentImage": ("width", "height", "batch_size"),
    "LatentUpscale": ("upscale_method", "width", "height", "crop"), "LatentUpscaleBy": ("upscale_method", "scale_by"),
    "FluxGuidance": ("guidance",), "VAELoader": ("vae_name",), "SaveImage": ("filename_prefix",),
    "PrimitiveNode": ("value",),
}
SEED_WIDGETS = ("seed", "noise_seed")
CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}
BYPASS, MUTED = 4, 2


def _widgets(kind: str, values: Any) -> dict:
    if isinstance(values, dict):
        return {k: v for k, v in values.items() if not isinstance(v, (dict, list))}
    if not isinstance(values, list):
        return {}
    names = WIDGETS.get(kind)
    if names is None:
        strings = [v for v in values if isinstance(v, str)]
        if len(strings) == 1 and any(w in kind for w in ("Text", "Prompt", "Encode")):
            return {"text": strings[0]}
        return {f"widget_{i}": v for i, v in enumerate(values) if not isinstance(v, (dict, list))}
    out, i = {}, 0
    for name in names:
        if i >= len(values):
            break
        out[name], i = values[i], i + 1
        if name in SEED_WIDGETS and i < len(values) and (isinstance(values[i], bool) or values[i] in CONTROL_VALUES):
            i += 1  # older editors stored this control as true/false
    return out


def _links(workflow: dict) -> dict[int, tuple[int, int, str]]:
    links = {}
    for link in workflow.get("links") or []:
        if isinstance(link, list) and len(link) >= 6:
            links[link[0]] = (link[1], link[2], link[5])
        elif isinstance(link, dict) and "id" in link:
            links[link["id"]] = (link.get("origin_id"), link.get("origin_slot"), link.get("type"))
    return links


def workflow_to_graph(workflow: dict, out: Collector) -> dict | None:
    nodes = {n.get("id"): n for n in workflow.get("nodes") or [] if isinstance(n, dict)}
    if not nodes:
        return None
    links = _links(workflow)
    if any(isinstance(n.get("type"), str) and len(n["type"]) == 36 and n["type"].count("-") == 4
           for n in nodes.values()):
        out.note("the workflow uses subgraphs; the nodes inside them are not read")

    def resolve(link_id, depth=0):
        if link_id not in links or depth > 64:
            return None
        origin, slot, kind = links[link_id]
        node = nodes.get(origin)
        if node is None or node.get("mode") == MUTED:
            return None
        if node.get("type") == "Reroute" or node.get("mode") == BYPASS:
            for entry in node.get("inputs") or []:
                if entry.get("link") is not None and (node.get("type") == "Reroute" or entry.get("type") == kind):
                    return resolve(entry["link"], depth + 1)
            return None
        if node.get("type") == "PrimitiveNode":
            values = node.get("widgets_values") or [None]
            return values[0] if isinstance(values, list) else None
        return [str(origin), slot]

    graph = {}
    for node_id, node in nodes.items():
        kind = str(node.get("type", ""))
        if node.get("mode") in (BYPASS, MUTED) or kind in ("Reroute", "PrimitiveNode", "Note", "MarkdownNote"):
            continue
        inputs = _widgets(kind, node.get("widgets_values"))
        for entry in node.get("inputs") or []:
            name = entry.get("name")
            if not name or entry.get("link") is None or (entry.get("widget") and name in inputs):
                continue
            value = resolve(entry["link"])
            if value is not None:
                inputs[name] = value
        graph[str(node_id)] = {"class_type": kind, "inputs": inputs}
    return graph

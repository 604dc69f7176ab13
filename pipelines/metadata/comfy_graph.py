"""Walking a ComfyUI API graph: node id -> {"class_type": ..., "inputs": {name: value or [node id, slot]}}.

Everything here follows links upstream by input *names* rather than a list of known node types, so custom
nodes that keep ComfyUI's conventions (a "model" input, a "text" input, a "conditioning" input, ...) work too.
Walks are bounded and remember what they visited, so cycles and huge graphs cannot hang the reader.
"""
from __future__ import annotations

from typing import Any

MAX_DEPTH = 64
TEXT_KEYS = ("text", "text_g", "prompt", "string", "value", "Text", "text_a")
LINK_SKIP = {"clip", "model", "vae", "image", "images", "pixels", "mask", "control_net", "samples", "latent",
             "latent_image", "upscale_model", "style_model", "clip_vision", "clip_vision_output", "hint"}
SCALAR_KEYS = ("value", "seed", "noise_seed", "int", "float", "number", "string", "text", "Text")


def link_of(value: Any) -> tuple[str, int] | None:
    if (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int))
            and not isinstance(value[0], bool) and isinstance(value[1], int) and not isinstance(value[1], bool)):
        return str(value[0]), value[1]
    return None


class Graph:
    def __init__(self, nodes: dict):
        self.nodes = {str(k): v for k, v in nodes.items()
                      if isinstance(v, dict) and isinstance(v.get("inputs", {}), dict)}
        self.used: set[str] = set()  # nodes whose settings became request fields

    def kind(self, node_id: str) -> str:
        return str(self.nodes.get(node_id, {}).get("class_type", ""))

    def inputs(self, node_id: str) -> dict:
        return self.nodes.get(node_id, {}).get("inputs") or {}

    def target(self, value: Any) -> tuple[str, int] | None:
        link = link_of(value)
        return link if link and link[0] in self.nodes else None

    def value(self, node_id: str, key: str, depth: int = 0) -> Any:
        """An input's value; a link is followed to the node that gives it (a primitive, seed or text node)."""
        value = self.inputs(node_id).get(key)
        target = self.target(value)
        if link_of(value) is None:
            return value
        if target is None or depth > 8:
            return None
        source = target[0]
        inputs = self.inputs(source)
        for name in (key, *SCALAR_KEYS):
            if name in inputs:
                self.used.add(source)
                return self.value(source, name, depth + 1)
        scalars = [name for name, item in inputs.items() if link_of(item) is None]
        if len(scalars) == 1:
            self.used.add(source)
            return self.value(source, scalars[0], depth + 1)
        return None

    def first(self, node_id: str, *keys: str) -> Any:
        for key in keys:
            value = self.value(node_id, key)
            if value is not None:
                return value
        return None

    def scalars(self, node_id: str) -> dict:
        return {name: value for name, value in self.inputs(node_id).items() if link_of(value) is None}

    # ---- prompts -----------------------------------------------------------------------------------
    def texts(self, link: Any, role: str, seen: set | None = None, depth: int = 0) -> list[tuple[str, str]]:
        """(node id, text) of every prompt that feeds this conditioning link, through combine/controlnet nodes."""
        target = self.target(link)
        seen = set() if seen is None else seen
        if target is None or depth > MAX_DEPTH or target in seen:
            return []
        seen.add(target)
        node_id, slot = target
        inputs = self.inputs(node_id)
        if self.kind(node_id) == "ConditioningZeroOut":
            self.used.add(node_id)
            return [(node_id, "")]
        for key in (*TEXT_KEYS[:3], role, f"text_{role}"):
            if key in inputs and not (key == role and link_of(inputs[key])):  # a role link is conditioning
                text = self.value(node_id, key)
                if isinstance(text, str):
                    self.used.add(node_id)
                    return [(node_id, text)]
        links = {name: value for name, value in inputs.items() if link_of(value)}
        if "positive" in links and "negative" in links:  # ControlNetApplyAdvanced & co: one output per role
            return self.texts(links["negative" if slot == 1 else "positive"], role, seen, depth + 1)
        found = []
        for name, value in links.items():
            if name not in LINK_SKIP and ("cond" in name.lower() or name in ("positive", "negative")):
                found += self.texts(value, role, seen, depth + 1)
        return found

    def clip_skip(self, text_node: str) -> int | None:
        """A1111's clip skip from a CLIPSetLastLayer upstream of a text encoder's "clip" input."""
        link, seen = self.inputs(text_node).get("clip"), set()
        while (target := self.target(link)) and target[0] not in seen and len(seen) < MAX_DEPTH:
            node_id = target[0]
            seen.add(node_id)
            layer = self.value(node_id, "stop_at_clip_layer")
            if isinstance(layer, int) and not isinstance(layer, bool):
                self.used.add(node_id)
                return -layer
            link = self.inputs(node_id).get("clip")
        return None

    # ---- model and LoRAs ---------------------------------------------------------------------------
    def model_chain(self, link: Any) -> tuple[str | None, list[tuple[Any, Any]], dict]:
        """(checkpoint name, [(LoRA, model strength)] nearest-last, notes) following "model" inputs upstream."""
        loras, extra, seen = [], {}, set()
        while (target := self.target(link)) and target[0] not in seen and len(seen) < MAX_DEPTH:
            node_id = target[0]
            seen.add(node_id)
            inputs = self.inputs(node_id)
            for key in ("ckpt_name", "unet_name", "model_name"):
                if key in inputs and isinstance(self.value(node_id, key), str):
                    self.used.add(node_id)
                    if key == "unet_name":
                        extra["Diffusion model loader"] = f"{self.kind(node_id)} #{node_id}"
                    for name, value in self.scalars(node_id).items():
                        if name != key:
                            extra[f"{self.kind(node_id)} {name}"] = value
                    return self.value(node_id, key), list(reversed(loras)), extra
            if "lora_name" in inputs:
                self.used.add(node_id)
                strength = self.first(node_id, "strength_model", "strength", "lora_strength")
                loras.append((self.value(node_id, "lora_name"), 1.0 if strength is None else strength))
                clip = self.value(node_id, "strength_clip")
                if clip is not None and clip != strength:
                    extra[f"LoRA {self.value(node_id, 'lora_name')} CLIP strength"] = clip
            for value in inputs.values():  # rgthree's Power Lora Loader: {"on": ..., "lora": ..., "strength": ...}
                if isinstance(value, dict) and "lora" in value and value.get("on", True) and value["lora"]:
                    self.used.add(node_id)
                    loras.append((value["lora"], value.get("strength", 1.0)))
            link = inputs.get("model")
        return None, list(reversed(loras)), extra

    # ---- latents -----------------------------------------------------------------------------------
    def latent_source(self, link: Any) -> tuple[str, str | None]:
        """("empty" | "sampler" | "upscale" | "image" | "other" | "none", node id) behind a latent input."""
        seen = set()
        while (target := self.target(link)) and target[0] not in seen and len(seen) < MAX_DEPTH:
            node_id = target[0]
            seen.add(node_id)
            inputs, kind = self.inputs(node_id), self.kind(node_id)
            if is_sampler(kind, inputs):
                return "sampler", node_id
            if "width" in inputs and "height" in inputs and ("batch_size" in inputs or "Empty" in kind):
                return "empty", node_id
            if kind.startswith("LatentUpscale") or "scale_by" in inputs:
                return "upscale", node_id
            if "pixels" in inputs:
                return "image", node_id
            link = inputs.get("samples") or inputs.get("latent")
            if link_of(link) is None:
                return "other", node_id
        return "none", None


def is_sampler(kind: str, inputs: dict) -> bool:
    keys = set(inputs)
    return (kind in ("KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced")
            or {"sampler_name", "steps", "cfg"} <= keys or {"guider", "sampler", "sigmas"} <= keys)

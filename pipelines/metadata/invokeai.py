"""Reading InvokeAI images.

3.x and later: `invokeai_metadata` JSON (positive_prompt, negative_prompt, width, height, seed, steps,
cfg_scale, scheduler as a diffusers name like "dpmpp_2m_k", model {model_name | name, ...}, loras
[{lora|model: {...}, weight}], clip_skip as layers skipped, strength for img2img, ...); when only
`invokeai_graph` is there, its core_metadata node holds the same keys.
2.x: `sd-metadata` JSON ({model_weights, model_hash, app_version, image: {prompt: [{prompt, weight}] or text,
steps, cfg_scale, seed, width, height, sampler, variations, strength, ...}}) and the older `Dream` line
('"prompt [negative]" -s 50 -S 42 -W 512 -H 768 -C 7.5 -A k_lms'). The negative prompt is the [bracketed] text.
InvokeAI scheduler names without "_k" mean the diffusers default (evenly spaced) schedule.
"""
from __future__ import annotations

import re
import shlex

from pipelines.metadata import names
from pipelines.metadata.settings import Collector, PngSettings, load_json

V3_FIELDS = {"positive_prompt": "prompt", "negative_prompt": "negative_prompt", "width": "width",
             "height": "height", "seed": "seed", "steps": "steps", "cfg_scale": "guidance_scale"}
DREAM_FLAGS = {"s": "steps", "steps": "steps", "S": "seed", "seed": "seed", "W": "width", "width": "width",
               "H": "height", "height": "height", "C": "guidance_scale", "cfg_scale": "guidance_scale"}


def _model_name(model) -> str | None:
    if isinstance(model, dict):
        return model.get("model_name") or model.get("name") or model.get("key")
    return model if isinstance(model, str) else None


def _sampler(out: Collector, written) -> None:
    if written:
        out.sampler(names.to_a1111(str(written), unstated=names.PLAIN), str(written))


def read_v3(data: dict, chunk: str = "invokeai_metadata") -> PngSettings:
    out = Collector("InvokeAI", chunk)
    for key, field in V3_FIELDS.items():
        out.set(field, data.get(key), key)
    _sampler(out, data.get("scheduler"))
    out.set("model", _model_name(data.get("model")), "model")
    if isinstance(data.get("model"), dict):
        for key, value in data["model"].items():
            if value != out.fields.get("model"):
                out.keep(f"model {key}", value)
    if isinstance(data.get("clip_skip"), int) and data["clip_skip"] > 0:
        out.set("clip_skip", data["clip_skip"] + 1, "clip_skip")  # layers skipped -> A1111's "Clip skip"
    if data.get("strength") is not None and "img2img" in str(data.get("generation_mode", "img2img")):
        out.set("denoising_strength", data["strength"], "strength")
    pairs = []
    for item in data.get("loras") or []:
        if isinstance(item, dict):
            pairs.append((_model_name(item.get("lora") or item.get("model")), item.get("weight", 1.0)))
    if pairs:
        out.loras(pairs)
    used = {*V3_FIELDS, "scheduler", "model", "loras"}
    used |= {key for key, field in (("clip_skip", "clip_skip"), ("strength", "denoising_strength"))
             if field in out.fields}
    for key, value in data.items():
        if key not in used:
            out.keep(key, value)
    return out.settings()


def metadata_from_graph(graph: dict) -> dict | None:
    nodes = graph.get("nodes")
    for node in (nodes.values() if isinstance(nodes, dict) else nodes or []):
        if isinstance(node, dict) and node.get("type") in ("core_metadata", "metadata_accumulator"):
            return node
    return None


def _split_negative(prompt: str) -> tuple[str, str]:
    """InvokeAI 2's "positive [negative] more positive": bracketed text is the negative prompt."""
    negatives = re.findall(r"\[([^\[\]]*)\]", prompt)
    positive = re.sub(r"\[[^\[\]]*\]", " ", prompt)
    return " ".join(positive.split()).strip(" ,"), ", ".join(n.strip() for n in negatives if n.strip())


def _v2_prompt(prompt) -> str:
    if isinstance(prompt, list):
        return ", ".join(str(p.get("prompt", "")) for p in prompt if isinstance(p, dict))
    return str(prompt or "")


def read_sd_metadata(data: dict, dream: str | None = None) -> PngSettings:
    out = Collector("InvokeAI", "sd-metadata")
    image = data.get("image") if isinstance(data.get("image"), dict) else {}
    prompt, negative = _split_negative(_v2_prompt(image.get("prompt")))
    out.fields.update(prompt=prompt, negative_prompt=negative)
    for key, field in (("steps", "steps"), ("cfg_scale", "guidance_scale"), ("seed", "seed"), ("width", "width"),
                       ("height", "height")):
        out.set(field, image.get(key), key)
    _sampler(out, image.get("sampler"))
    out.set("model", data.get("model_weights"), "model_weights")
    if image.get("type") == "img2img":
        out.set("denoising_strength", image.get("strength"), "strength")
    variations = image.get("variations") or []
    if len(variations) == 1 and isinstance(variations[0], (list, dict)):
        seed, weight = (variations[0].get("seed"), variations[0].get("weight")) \
            if isinstance(variations[0], dict) else variations[0][:2]
        out.set("variation_seed", seed, "variations")
        out.set("variation_strength", weight, "variations")
        variations = []
    used = {"steps", "cfg_scale", "seed", "width", "height", "sampler", "prompt", "variations", "strength"}
    for key, value in image.items():
        if key not in used:
            out.keep(key, value)
    out.keep("variations", variations)
    for key, value in data.items():
        if key not in ("image", "model_weights"):
            out.keep(key, value)
    return out.settings()


def read_dream(text: str) -> PngSettings:
    out = Collector("InvokeAI", "Dream")
    try:
        tokens = shlex.split(text)
    except ValueError:  # an unbalanced quote inside the prompt: take the quoted prompt as it stands
        match = re.match(r'^\s*"(.*)"(.*)$', text, re.S)
        tokens = [match.group(1), *match.group(2).split()] if match else text.split()
    prompt, negative = _split_negative(tokens[0] if tokens else "")
    out.fields.update(prompt=prompt, negative_prompt=negative)
    flag, values = None, {}
    for token in tokens[1:]:
        if re.fullmatch(r"--?[A-Za-z_]+", token):
            flag = token.lstrip("-")
            values[flag] = []
        elif flag:
            values[flag].append(token)
    for flag, items in values.items():
        value = " ".join(items) if items else True
        if flag in DREAM_FLAGS:
            out.set(DREAM_FLAGS[flag], value, f"-{flag}")
        elif flag in ("A", "sampler"):
            _sampler(out, value)
        elif flag in ("f", "strength") and ("I" in values or "init_img" in values):
            out.set("denoising_strength", value, f"-{flag}")
        else:
            out.keep(f"-{flag}", value)
    return out.settings()


def read_invokeai(chunks: dict[str, str]) -> PngSettings:
    out = Collector("InvokeAI", "")
    if "invokeai_metadata" in chunks:
        data = load_json(chunks["invokeai_metadata"], "invokeai_metadata", out)
        if isinstance(data, dict):
            return read_v3(data)
    if "invokeai_graph" in chunks:
        graph = load_json(chunks["invokeai_graph"], "invokeai_graph", out)
        meta = metadata_from_graph(graph) if isinstance(graph, dict) else None
        if meta:
            return read_v3({k: v for k, v in meta.items() if k not in ("id", "type", "is_intermediate", "use_cache")},
                           "invokeai_graph")
    if "sd-metadata" in chunks:
        data = load_json(chunks["sd-metadata"], "sd-metadata", out)
        if isinstance(data, dict):
            return read_sd_metadata(data)
    if "Dream" in chunks:
        return read_dream(chunks["Dream"])
    return out.settings()

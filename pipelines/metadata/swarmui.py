"""Reading SwarmUI (and StableSwarmUI) images: `parameters` holds JSON, not A1111 text:
{"sui_image_params": {prompt, negativeprompt, model, seed, steps, cfgscale, width, height, sampler, scheduler
(ComfyUI names), loras [names], loraweights [weights], clipstopatlayer (-2 = clip skip 2), images,
initimagecreativity, refinerupscale / refinercontrolpercentage / refinersteps / refinerupscalemethod,
variationseed / variationseedstrength, swarm_version, ...}, "sui_extra_data": {...}, "sui_models": [...]}.
Early StableSwarmUI wrote "comfyuisampler" / "autowebuisampler" instead of "sampler".
"""
from __future__ import annotations

from pipelines.metadata import names
from pipelines.metadata.settings import Collector, PngSettings

FIELDS = {"prompt": "prompt", "negativeprompt": "negative_prompt", "model": "model", "seed": "seed",
          "steps": "steps", "cfgscale": "guidance_scale", "width": "width", "height": "height",
          "images": "num_images", "initimagecreativity": "denoising_strength", "variationseed": "variation_seed",
          "variationseedstrength": "variation_strength"}
HIRES = {"refinerupscale": "hires_scale", "refinercontrolpercentage": "hires_denoising",
         "refinersteps": "hires_steps", "refinerupscalemethod": "hires_upscaler"}


def read_swarmui(data: dict, chunk: str = "parameters") -> PngSettings:
    out = Collector("SwarmUI", chunk)
    params = data.get("sui_image_params") if isinstance(data.get("sui_image_params"), dict) else {}
    used = set(FIELDS)
    for key, field in FIELDS.items():
        out.set(field, params.get(key), key)
    out.fields.setdefault("negative_prompt", "")
    if isinstance(params.get("refinerupscale"), (int, float)) and params["refinerupscale"] > 1:
        for key, field in HIRES.items():
            out.set(field, params.get(key), key)
        used |= set(HIRES)
    written = params.get("sampler") or params.get("comfyuisampler")
    if written:
        out.sampler(names.to_a1111(str(written), params.get("scheduler"), unstated="Normal"), str(written))
        used |= {"sampler", "scheduler", "comfyuisampler"}
    elif params.get("autowebuisampler"):
        out.sampler(names.to_a1111(str(params["autowebuisampler"]), unstated=names.PLAIN),
                    str(params["autowebuisampler"]))
        used.add("autowebuisampler")
    layer = params.get("clipstopatlayer")
    if isinstance(layer, int) and not isinstance(layer, bool) and layer < 0:
        out.set("clip_skip", -layer, "clipstopatlayer")
        used.add("clipstopatlayer")
    loras, weights = params.get("loras"), params.get("loraweights") or []
    if isinstance(loras, list) and loras:
        out.loras([(name, weights[i] if i < len(weights) else 1.0) for i, name in enumerate(loras)])
        used |= {"loras", "loraweights"}
    for key, value in params.items():
        if key not in used:
            out.keep(key, value)
    for key, value in data.items():
        if key != "sui_image_params":
            out.keep(key, value)
    return out.settings()

"""Reading ComfyUI images: the `prompt` chunk (the API graph that ran), the `workflow` chunk as a fallback.

The first-pass sampler is the one whose latent starts empty (EmptyLatentImage & co; or an encoded image, for
img2img); from it: seed, steps, CFG, sampler + scheduler (also from KSamplerSelect / BasicScheduler /
RandomNoise / CFGGuider for SamplerCustom(Advanced)), the positive and negative prompts (through
conditioning nodes), the checkpoint and LoRA loaders, the latent size and batch. A second sampler fed by a
latent upscale of the first is read as the hires pass. Every node not read that way is listed in `unknown`
with its settings, under "<class_type> #<id>".
"""
from __future__ import annotations

from pipelines.metadata import names
from pipelines.metadata.comfy_graph import Graph, is_sampler
from pipelines.metadata.comfy_workflow import workflow_to_graph
from pipelines.metadata.settings import Collector, PngSettings, load_json

SIGMAS_SCHEDULERS = {"KarrasScheduler": "karras", "ExponentialScheduler": "exponential",
                     "PolyexponentialScheduler": "polyexponential", "AlignYourStepsScheduler": "align_your_steps",
                     "BetaSamplingScheduler": "beta", "SDTurboScheduler": "sd_turbo"}
OUTPUT_HINTS = ("Save", "Preview")
SAMPLER_KEYS = ("seed", "noise_seed", "steps", "cfg", "sampler_name", "scheduler", "denoise")
# Parts of SamplerCustom(Advanced) whose every setting becomes a field; others stay listed in `unknown`.
FULLY_READ_PARTS = {"RandomNoise", "DisableNoise", "CFGGuider", "BasicGuider", "KSamplerSelect", "BasicScheduler"}


def _sampler_settings(graph: Graph, node_id: str) -> dict:
    """Seed, steps, CFG, sampler, scheduler, denoise and the links of one sampler node (any of the kinds)."""
    inputs = graph.inputs(node_id)
    s = {"seed": graph.first(node_id, "seed", "noise_seed"), "steps": graph.value(node_id, "steps"),
         "cfg": graph.value(node_id, "cfg"), "sampler": graph.value(node_id, "sampler_name"),
         "scheduler": graph.value(node_id, "scheduler"), "denoise": graph.value(node_id, "denoise"),
         "positive": inputs.get("positive"), "negative": inputs.get("negative"), "model": inputs.get("model"),
         "latent": inputs.get("latent_image")}
    parts = []
    for key in ("noise", "guider", "sampler", "sigmas"):  # SamplerCustom / SamplerCustomAdvanced
        target = graph.target(inputs.get(key))
        if target:
            parts.append((key, target[0]))
    for key, part in parts:
        kind = graph.kind(part)
        if kind in FULLY_READ_PARTS:
            graph.used.add(part)
        if key == "noise":
            s["seed"] = graph.value(part, "noise_seed") if kind != "DisableNoise" else None
        elif key == "guider":
            g = graph.inputs(part)
            s["cfg"] = graph.value(part, "cfg") if "cfg" in g else s["cfg"] if s["cfg"] is not None else 1.0
            s["positive"] = g.get("positive") or g.get("conditioning") or g.get("cond1") or s["positive"]
            s["negative"] = g.get("negative") or s["negative"]
            s["model"] = g.get("model") or s["model"]
        elif key == "sampler":
            s["sampler"] = graph.value(part, "sampler_name") or kind
        else:
            s["scheduler"] = graph.value(part, "scheduler") or SIGMAS_SCHEDULERS.get(kind, kind)
            s["steps"] = graph.value(part, "steps") if graph.value(part, "steps") is not None else s["steps"]
            s["denoise"] = graph.value(part, "denoise") if graph.value(part, "denoise") is not None else s["denoise"]
    return s


def _upstream_of_outputs(graph: Graph) -> set[str]:
    stack = [n for n in graph.nodes if any(h in graph.kind(n) for h in OUTPUT_HINTS)]
    seen: set[str] = set()
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        stack += [t[0] for v in graph.inputs(node).values() if (t := graph.target(v))]
    return seen


def _passes(graph: Graph) -> tuple[str | None, str | None, tuple]:
    """(first-pass sampler, hires-pass sampler, (latent kind, latent node) of the first pass)."""
    samplers = sorted((n for n in graph.nodes if is_sampler(graph.kind(n), graph.inputs(n))),
                      key=lambda n: (not n.isdigit(), int(n) if n.isdigit() else 0, n))
    if not samplers:
        return None, None, ("none", None)
    sources = {n: graph.latent_source(graph.inputs(n).get("latent_image")) for n in samplers}
    reachable = _upstream_of_outputs(graph)
    first_candidates = [n for n in samplers if sources[n][0] in ("empty", "image")] or samplers
    first = sorted(first_candidates, key=lambda n: (n not in reachable, sources[n][0] != "empty"))[0]
    hires = None
    for n in samplers:
        kind, node = sources[n]
        if kind == "upscale" and graph.latent_source(graph.inputs(node).get("samples"))[1] == first:
            hires = n
            break
    return first, hires, sources[first]


def _hires(graph: Graph, out: Collector, node_id: str, first_width) -> None:
    s = _sampler_settings(graph, node_id)
    upscale = graph.latent_source(graph.inputs(node_id).get("latent_image"))[1]
    graph.used.update((node_id, upscale))
    scale = graph.value(upscale, "scale_by")
    width = graph.value(upscale, "width")
    if scale is None and isinstance(width, (int, float)) and isinstance(first_width, int) and first_width:
        scale = width / first_width
    method = graph.value(upscale, "upscale_method")
    out.set("hires_scale", scale, "hires upscale")
    out.set("hires_upscaler", "Latent" if method in (None, "bilinear") else f"Latent ({method})", "upscale_method")
    out.set("hires_steps", s["steps"], "hires steps")
    out.set("hires_denoising", s["denoise"], "hires denoise")
    for key in ("seed", "cfg", "sampler", "scheduler"):
        out.keep(f"hires {key}", s[key])


def read_graph(graph: Graph, out: Collector, image_size: tuple[int, int] | None) -> bool:
    first, hires, (latent_kind, latent_node) = _passes(graph)
    if first is None:
        return False
    graph.used.add(first)
    s = _sampler_settings(graph, first)
    positive = graph.texts(s["positive"], "positive")
    negative = graph.texts(s["negative"], "negative")
    out.set("prompt", ", ".join(t for _, t in positive if t) if positive else None, "positive prompt")
    out.set("negative_prompt", ", ".join(t for _, t in negative if t) if negative else "", "negative prompt")
    if len(positive) > 1:
        out.keep("prompt parts", [t for _, t in positive])
        out.note("the positive conditioning combines several prompts; they are joined with ', '")
    if not positive:
        out.note("no positive prompt text was found upstream of the sampler")
    for node_id, _ in positive + negative:  # SDXL encoders' size conditioning and the like
        extras = {k: v for k, v in graph.scalars(node_id).items() if k not in ("text", "text_g", "text_l")}
        if extras:
            out.keep(f"{graph.kind(node_id)} #{node_id}", extras)
    for node_id, _ in positive[:1]:
        text_l = graph.value(node_id, "text_l")
        if isinstance(text_l, str) and text_l != graph.value(node_id, "text_g"):
            out.keep("text_l", text_l)
        clip_skip = graph.clip_skip(node_id)
        if clip_skip is not None:
            out.set("clip_skip", clip_skip, "stop_at_clip_layer")
    out.set("seed", s["seed"], "seed")
    out.set("steps", s["steps"], "steps")
    out.set("guidance_scale", s["cfg"], "cfg")
    if s["sampler"] is not None:
        out.sampler(names.to_a1111(str(s["sampler"]), s["scheduler"] and str(s["scheduler"])), str(s["sampler"]))
    model, loras, extra = graph.model_chain(s["model"])
    out.set("model", model, "ckpt_name")
    if loras:
        out.loras(loras)
    for key, value in extra.items():
        out.keep(key, value)
    if latent_kind == "empty":
        graph.used.add(latent_node)
        out.set("width", graph.value(latent_node, "width"), "width")
        out.set("height", graph.value(latent_node, "height"), "height")
        out.set("num_images", graph.value(latent_node, "batch_size"), "batch_size")
        if s["denoise"] not in (None, 1, 1.0):
            out.keep("denoise", s["denoise"])
    else:
        if latent_kind == "image":
            out.set("denoising_strength", s["denoise"], "denoise")
        if image_size:
            out.fields.setdefault("width", image_size[0])
            out.fields.setdefault("height", image_size[1])
            out.note("the first pass does not start from an empty latent; the size is the image's own")
    extras = {k: v for k, v in graph.scalars(first).items() if k not in SAMPLER_KEYS}
    if extras:  # KSamplerAdvanced's start/end steps, custom samplers' own settings
        out.keep(f"{graph.kind(first)} #{first}", extras)
    if hires:
        _hires(graph, out, hires, out.fields.get("width"))
    for node_id in graph.nodes:
        if node_id not in graph.used and graph.scalars(node_id):
            out.keep(f"{graph.kind(node_id)} #{node_id}", graph.scalars(node_id))
    return True


def read_comfyui(chunks: dict[str, str], image_size=None, source: str = "ComfyUI") -> PngSettings:
    out = Collector(source, "prompt")
    prompt = load_json(chunks["prompt"], "prompt", out) if "prompt" in chunks else None
    if isinstance(prompt, dict) and isinstance(prompt.get("nodes"), list):  # a workflow saved as "prompt"
        prompt = workflow_to_graph(prompt, out)
    if isinstance(prompt, dict) and read_graph(Graph(prompt), out, image_size):
        return out.settings()
    if prompt is not None:
        out.note("the 'prompt' chunk holds no sampler node")
    workflow = load_json(chunks["workflow"], "workflow", out) if "workflow" in chunks else None
    if isinstance(workflow, dict):
        fallback = Collector(source, "workflow")
        fallback.notes = out.notes
        graph = workflow_to_graph(workflow, fallback)
        if graph and read_graph(Graph(graph), fallback, image_size):
            return fallback.settings()
        out.note("the 'workflow' chunk holds no sampler node that could be read")
    return out.settings()


def fill_from_graph(out: Collector, chunks: dict[str, str], image_size) -> None:
    """Fields the JSON chunk lacks, taken from the ComfyUI graph stored beside it (if any)."""
    if "prompt" not in chunks and "workflow" not in chunks:
        return
    graph = read_comfyui(chunks, image_size)
    for name, value in graph.fields.items():
        if out.fields.setdefault(name, value) != value:
            out.keep(f"ComfyUI graph {name}", value)
    for label, value in graph.unknown.items():
        out.unknown.setdefault(label, value)
    for note in graph.notes:
        out.note(f"ComfyUI graph: {note}")
    if graph.fields:
        out.chunk += f" + {graph.chunk}"

"""Which studio wrote an image, and its settings: the one entry point, `read_settings`.

Chunks are tried from the most specific to the most generic (a unique chunk name first, then what is inside
`parameters`, then ComfyUI's graph), and hidden (stealth) metadata last, only when no chunk was recognised.
"""
from __future__ import annotations

import json

from PIL import UnidentifiedImageError

from pipelines.metadata.a1111 import read_parameters
from pipelines.metadata.comfyui import fill_from_graph, read_comfyui
from pipelines.metadata.container import ImageText, image_for_pixels, read_image_text
from pipelines.metadata.easydiffusion import is_easy_diffusion, read_easy_diffusion
from pipelines.metadata.fooocus import read_fooocus_json
from pipelines.metadata.invokeai import read_invokeai
from pipelines.metadata.novelai import read_novelai
from pipelines.metadata.settings import Collector, PngSettings, load_json
from pipelines.metadata.stability_matrix import read_stability_matrix
from pipelines.metadata.stealth import read_stealth
from pipelines.metadata.studio_json import read_studio_request
from pipelines.metadata.swarmui import read_swarmui
from pipelines.metadata.tensorart import read_tensorart
from pipelines.metadata.writer import REQUEST_KEY

INVOKEAI_CHUNKS = ("invokeai_metadata", "invokeai_graph", "sd-metadata", "Dream")
NOVELAI_KEYS = ("uc", "noise_schedule", "v4_prompt", "n_samples", "sm_dyn")
FOOOCUS_KEYS = ("base_model", "full_prompt", "performance", "styles", "fooocus_scheme")


def _from_json_text(data: dict, chunks: dict[str, str], chunk: str, size) -> PngSettings | None:
    """A JSON `parameters` / `Comment` / `comment` chunk: SwarmUI, Fooocus, NovelAI or ComfyUI."""
    if isinstance(data.get("sui_image_params"), dict):
        return read_swarmui(data, chunk)
    if any(key in data for key in ("use_stable_diffusion_model", "Stable Diffusion model", "num_inference_steps")):
        return read_easy_diffusion(data, chunk)
    if any(key in data for key in NOVELAI_KEYS):
        return read_novelai({**chunks, "Comment": data}, size, chunk)
    if any(key in data for key in FOOOCUS_KEYS) or ("prompt" in data and "negative_prompt" in data):
        return read_fooocus_json(data, chunk)
    if "prompt" in data and "workflow" in data:  # ComfyUI's chunks carried inside one JSON comment
        inner = {key: value if isinstance(value, str) else _dumps(value)
                 for key, value in data.items() if key in ("prompt", "workflow")}
        return read_comfyui(inner, size)
    return None


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def settings_from_chunks(chunks: dict[str, str], size=None) -> PngSettings | None:
    """The settings in a set of named text chunks, or None when no studio's format is recognised."""
    if REQUEST_KEY in chunks:
        ours = read_studio_request(chunks[REQUEST_KEY])
        if ours is not None:
            return ours
    if chunks.get("Software") == "NovelAI":
        return read_novelai(chunks, size)
    if any(name in chunks for name in INVOKEAI_CHUNKS):
        return read_invokeai(chunks)
    if "generation_data" in chunks:
        return read_tensorart(chunks, size)
    if "parameters-json" in chunks or "smproj" in chunks:
        return read_stability_matrix(chunks, size)
    if is_easy_diffusion(chunks):
        return read_easy_diffusion(chunks)
    scheme = chunks.get("fooocus_scheme") or chunks.get("exif MakerNote")
    for chunk in ("parameters", "Comment", "comment"):
        text = chunks.get(chunk)
        if not text or not text.strip():
            continue
        if text.lstrip().startswith("{"):
            probe = Collector("", chunk)
            data = load_json(text, chunk, probe)
            found = _from_json_text(data, chunks, chunk, size) if isinstance(data, dict) else None
            if found:
                return found
            if chunk == "parameters":
                return PngSettings({}, {chunk: text[:2000]}, "", chunk, tuple(probe.notes) or
                                   ("the 'parameters' chunk holds JSON of no known studio",))
        elif chunk == "parameters":
            settings = read_parameters(text, fooocus=scheme == "a1111")
            if "prompt" in chunks or "workflow" in chunks:
                out = Collector(settings.source, settings.chunk)
                out.fields, out.unknown, out.notes = dict(settings.fields), dict(settings.unknown), list(settings.notes)
                fill_from_graph(out, chunks, size)
                return out.settings()
            return settings
    if "prompt" in chunks or "workflow" in chunks:
        return read_comfyui(chunks, size)
    return None


def _stealth(image_or_path, text: ImageText) -> PngSettings | None:
    try:
        hidden, problem = read_stealth(image_for_pixels(image_or_path, text))
    except (OSError, UnidentifiedImageError, ValueError) as error:
        text.notes.append(f"the pixels could not be read for hidden metadata ({error})")
        return None
    if problem:
        text.notes.append(problem)
    if not hidden:
        return None
    if hidden.lstrip().startswith("{"):
        data = load_json(hidden, "stealth", None)
        if isinstance(data, dict):
            chunks = {k: v if isinstance(v, str) else _dumps(v) for k, v in data.items()}
            found = settings_from_chunks(chunks, text.size)
            if found:
                return PngSettings(found.fields, found.unknown, found.source, f"hidden in the pixels ({found.chunk})",
                                   found.notes)
    return read_parameters(hidden, chunk="hidden in the pixels")


def read_settings(image_or_path) -> PngSettings:
    """Generation settings stored in an image (path, bytes or PIL image); source "" when none are found.

    Raises OSError / PIL.UnidentifiedImageError only for a file that is not an image at all.
    """
    text = read_image_text(image_or_path)
    settings = settings_from_chunks(text.chunks, text.size)
    if settings is None and text.format in ("PNG", "WEBP"):
        settings = _stealth(image_or_path, text)
    if settings is None:
        settings = PngSettings({}, dict(text.chunks), "", "", ())
    if text.notes:
        settings = PngSettings(settings.fields, settings.unknown, settings.source, settings.chunk,
                               tuple(text.notes) + settings.notes)
    return settings

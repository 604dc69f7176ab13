"""PNG metadata: written the AUTOMATIC1111 way (plus our exact request as JSON), read back from ours and from
every common studio's files.

    png_info(request, {"Model hash": ...})      # the PngInfo to save with an image
    read_settings(path) -> PngSettings          # fields (GenerationRequest names), unknown, source, notes
    read_png_info(path) -> dict                 # just the fields

Readers: a1111 (A1111 / Forge / SD.Next / Fooocus "a1111" text, also JPEG/WebP EXIF), comfyui (+ workflow),
fooocus, invokeai (3+, 2.x, Dream), novelai (+ stealth pixels), swarmui, tensorart, stability_matrix.
Sampler names are mapped to A1111's in names.py.
"""
from __future__ import annotations

from pipelines.metadata.a1111_text import PARAM_RE as A1111_PARAM_RE
from pipelines.metadata.a1111_text import a1111_pairs, quote, split_parameters, unquote
from pipelines.metadata.container import read_image_text
from pipelines.metadata.detect import read_settings, settings_from_chunks
from pipelines.metadata.hashes import FileHashes
from pipelines.metadata.settings import PngSettings
from pipelines.metadata.writer import PARAMETERS_KEY, REQUEST_KEY, STUDIO_VERSION, a1111_parameters, png_info

__all__ = ["A1111_PARAM_RE", "PARAMETERS_KEY", "a1111_pairs", "REQUEST_KEY", "STUDIO_VERSION", "FileHashes", "PngSettings", "a1111_parameters",
           "parse_parameters", "png_info", "png_text_chunks", "quote", "read_png_info", "read_settings",
           "settings_from_chunks", "split_parameters", "unquote"]


def png_text_chunks(image_or_path) -> dict[str, str]:
    """All metadata text of an image by name (PNG text chunks; EXIF UserComment as "parameters")."""
    return read_image_text(image_or_path).chunks


def parse_parameters(text: str) -> dict:
    """A1111 `parameters` text -> GenerationRequest field values (only those the text states)."""
    from pipelines.metadata.a1111 import read_parameters

    return read_parameters(text).fields


def read_png_info(image_or_path) -> dict:
    """Generation settings stored in an image, as GenerationRequest field names; {} when it has none."""
    return read_settings(image_or_path).fields

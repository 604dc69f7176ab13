"""What a reader returns (PngSettings) and the helper readers fill it with (Collector).

Every value a file states either becomes a GenerationRequest field (converted to the field's type) or is kept
in `unknown` under the name the file gives it, so the PNG Info tab can show it: nothing is dropped silently.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from pipelines.metadata import names

INT_FIELDS = ("steps", "width", "height", "seed", "num_images", "clip_skip", "hires_steps", "mask_blur",
              "variation_seed", "inpaint_padding", "outpaint_pixels", "step_cache", "batch_count")
FLOAT_FIELDS = ("guidance_scale", "denoising_strength", "variation_strength", "hires_scale", "hires_denoising",
                "adapter_conditioning_factor")
TEXT_FIELDS = ("prompt", "negative_prompt", "model", "scheduler", "schedule_type", "hires_upscaler",
               "inpaint_area", "masked_content", "resize_mode")
MAX_CHUNK_CHARS = 1 << 20  # what is parsed of one metadata chunk; larger ones get a note instead


@dataclass(frozen=True)
class PngSettings:
    """Generation settings read from an image.

    fields: GenerationRequest field names -> values; unknown: what the file states that no field holds (its
    own names and values); source: the studio that wrote it ("" when nothing was found); chunk: where it was
    read from; notes: problems met (malformed JSON, an oversized chunk, a sampler with no A1111 name).
    """

    fields: dict[str, Any] = field(default_factory=dict)
    unknown: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    chunk: str = ""
    notes: tuple[str, ...] = ()

    def to_json_dict(self) -> dict:
        return {"source": self.source, "chunk": self.chunk, "fields": self.fields, "unknown": self.unknown,
                "notes": list(self.notes)}


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+", text):  # exact, also for 64-bit seeds
            return int(text)
        value = float(text)
    number = float(value)
    if not math.isfinite(number) or not number.is_integer():
        raise ValueError
    return int(number)


def _as_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError
    number = float(str(value).strip()) if isinstance(value, str) else float(value)
    if not math.isfinite(number):
        raise ValueError
    return number


class Collector:
    """Builds a PngSettings; a value that does not convert is kept in `unknown` with a note, never raised."""

    def __init__(self, source: str, chunk: str = ""):
        self.source, self.chunk = source, chunk
        self.fields: dict[str, Any] = {}
        self.unknown: dict[str, Any] = {}
        self.notes: list[str] = []

    def set(self, name: str, value: Any, label: str | None = None) -> bool:
        """Put `value` into field `name`; on a wrong type keep it as `label` in unknown. None is skipped."""
        if value is None:
            return False
        label = label or name
        try:
            if name in INT_FIELDS:
                value = _as_int(value)
            elif name in FLOAT_FIELDS:
                value = _as_float(value)
            elif name in TEXT_FIELDS:
                if isinstance(value, (dict, list)):
                    raise ValueError
                value = str(value)
        except (TypeError, ValueError, OverflowError):
            self.keep(label, value)
            self.note(f"{label}: {short(value)} is not a valid {name.replace('_', ' ')}")
            return False
        self.fields[name] = value
        return True

    def keep(self, label: str, value: Any) -> None:
        """Something the file states that no request field holds."""
        if value is None or value == "" or value == [] or value == {}:
            return
        self.unknown[str(label)] = value

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def loras(self, pairs: list[tuple[Any, Any]], label: str = "LoRAs") -> None:
        good = []
        for name, weight in pairs:
            try:
                good.append((str(name), _as_float(weight)))
            except (TypeError, ValueError):
                self.keep(f"{label}: {name}", weight)
                self.note(f"{label}: weight {short(weight)} of {name!r} is not a number")
        if good:
            self.fields["loras"] = good

    def sampler(self, name: names.A1111Name, written: str) -> None:
        """Set scheduler/schedule_type; say so when the names have no A1111 equivalent (kept as written)."""
        self.fields["scheduler"], self.fields["schedule_type"] = name.sampler, name.schedule_type
        if not names.is_known_sampler(name.sampler):
            self.note(f"sampler {written!r} has no AUTOMATIC1111 name here; kept as written")
        if not names.is_known_schedule(name.schedule_type):
            self.note(f"schedule {name.schedule_type!r} has no AUTOMATIC1111 name here; kept as written")
        variant = names.variant_of(written)
        if variant:
            self.keep(*variant)

    def settings(self) -> PngSettings:
        return PngSettings(dict(self.fields), dict(self.unknown), self.source, self.chunk, tuple(self.notes))


def short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return repr(text if len(text) <= limit else text[:limit] + "…")


def load_json(text: str, chunk: str, collector: Collector | None = None) -> Any:
    """The JSON in a chunk, or None with a note (malformed, or over MAX_CHUNK_CHARS)."""
    if len(text) > MAX_CHUNK_CHARS:
        if collector:
            collector.note(f"the {chunk!r} chunk has {len(text):,} characters; only chunks up to "
                           f"{MAX_CHUNK_CHARS:,} are read")
        return None
    try:
        return json.loads(text.rstrip("\x00"))
    except (ValueError, RecursionError) as error:
        if collector:
            collector.note(f"the {chunk!r} chunk is not valid JSON ({error})")
        return None

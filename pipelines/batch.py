"""Many requests from a JSON Lines file, one request per line, resumable, splittable across processes.

Each line is a JSON object of GenerationRequest fields (any model, sampler, adapters, LoRAs), plus an
optional "id" echoed in its result:

    {"prompt": "a red star", "seed": 1, "scheduler": "DPM++ 2M", "num_images": 2, "id": "star"}
    {"prompt": "a blue circle", "model": "sd15", "loras": ["ink:0.8"], "step_cache": 3}
    {"prompt": "a sketch", "adapters": [{"kind": "sketch", "image": "maps/star.png", "weight": 0.9}]}

Line N's images are written as OUT/NNNNN-K.png (K = 0, 1, ...; adapter maps beside them as .condJ.png),
each with its settings embedded, and one result line is appended to OUT/results.jsonl:
{"line": N, "status": "ok", "paths": [...], "seeds": [...], ...} or {"line": N, "status": "error",
"error": "steps: must be from 1 to 150, got 0", ...}. A bad line is reported and the rest go on.

Resuming: a line whose result says "ok" for the same text is skipped, so running the same command again
finishes what an interrupted run left (errors are tried again). Several processes (accelerate or torchrun)
split the lines still to do into even, contiguous shares with accelerate's process state and append to the
same results file under a lock; the names of the images depend only on the line, never on the process.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from pipelines.requests import AdapterInput, GenerationRequest, InvalidRequest

RESULTS_NAME = "results.jsonl"
EXTRA_KEYS = ("id",)


@dataclass(frozen=True)
class BatchLine:
    number: int  # 1-based, as an editor shows it
    text: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.strip().encode()).hexdigest()[:16]


def read_lines(path: str | Path) -> list[BatchLine]:
    """Every non-blank line that is not a `#` comment, with its line number."""
    with open(path, encoding="utf-8") as f:
        return [BatchLine(n, text.rstrip("\n")) for n, text in enumerate(f, start=1)
                if text.strip() and not text.lstrip().startswith("#")]


def read_results(out: str | Path) -> dict[int, dict]:
    """The last result recorded for each line number (a torn last line from a crash is ignored)."""
    found: dict[int, dict] = {}
    path = Path(out) / RESULTS_NAME
    if not path.exists():
        return found
    for text in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(text)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("line"), int):
            found[record["line"]] = record
    return found


def pending(lines: list[BatchLine], results: dict[int, dict]) -> list[BatchLine]:
    def done(line: BatchLine) -> bool:
        record = results.get(line.number)
        return bool(record) and record.get("status") == "ok" and record.get("digest") == line.digest
    return [line for line in lines if not done(line)]


def append_result(out: str | Path, record: dict) -> None:
    """One JSON line, appended under an exclusive lock so processes sharing the file never interleave."""
    path = Path(out) / RESULTS_NAME
    data = (json.dumps(record, ensure_ascii=False) + "\n").encode()
    with open(path, "ab") as f:
        try:
            import fcntl

            fcntl.flock(f, fcntl.LOCK_EX)
        except ImportError:  # not POSIX: O_APPEND writes of one short line are still not torn in practice
            pass
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _loras(value: Any) -> list[tuple[str, float]]:
    from pipelines.loras import parse_lora_spec

    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise InvalidRequest("loras", 'must be a list of "KEY_OR_PATH[:WEIGHT]" or [path, weight] pairs')
    out = []
    for item in value:
        if isinstance(item, str):
            out.append(parse_lora_spec(item))
        elif isinstance(item, list) and len(item) == 2:
            out.append((str(item[0]), float(item[1])))
        else:
            raise InvalidRequest("loras", f"cannot read the entry {item!r}")
    return out


def _adapters(value: Any, base: Path) -> list[AdapterInput]:
    from PIL import Image

    if value in (None, ""):
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise InvalidRequest("adapters", 'must be a list of {"kind": ..., "image": PATH, "weight": ...}')
    out = []
    for item in value:
        unknown = set(item) - {"kind", "image", "weight", "preprocess", "options"}
        if unknown or "kind" not in item or "image" not in item:
            raise InvalidRequest("adapters", f"each needs kind and image (and may have weight, preprocess, "
                                             f"options); got {sorted(item)}")
        path = Path(item["image"]).expanduser()
        path = path if path.is_absolute() else base / path
        try:
            with Image.open(path) as image:
                picture = image.convert("RGB")
        except OSError as error:
            raise InvalidRequest("adapters", f"cannot read {path}: {error}") from error
        out.append(AdapterInput(str(item["kind"]), picture, float(item.get("weight", 1.0)),
                                bool(item.get("preprocess", False)), dict(item.get("options") or {})))
    return out


def request_from_line(line: BatchLine, registry, base: Path) -> tuple[GenerationRequest, dict]:
    """A line -> (request, extra keys); a missing size is the model's own, as on the command line.
    Relative adapter image paths are read from `base` (the folder of the JSONL file)."""
    try:
        data = json.loads(line.text)
    except ValueError as error:
        raise InvalidRequest("line", f"not JSON: {error}") from None
    if not isinstance(data, dict):
        raise InvalidRequest("line", "must be a JSON object of request fields")
    extra = {key: data.pop(key) for key in EXTRA_KEYS if key in data}
    known = set(GenerationRequest.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidRequest(unknown[0], f"is not a request field; fields: {', '.join(sorted(known))}")
    if "prompt" not in data:
        raise InvalidRequest("prompt", "is required")
    data["loras"] = _loras(data.get("loras"))
    data["adapters"] = _adapters(data.get("adapters"), base)
    limits = registry.limits(data.get("model", GenerationRequest.model))
    data.setdefault("width", limits.default_width)
    data.setdefault("height", limits.default_height)
    return GenerationRequest(**data), extra


def save_images(result, out: Path, number: int) -> list[str]:
    """OUT/NNNNN-K.png for image K of line N, settings embedded; replaced when the line is run again."""
    from pipelines.metadata import png_info
    from pipelines.outputs import write_png_atomic

    paths = []
    for k, item in enumerate(result.items):
        stem = f"{number:05d}-{k}"
        extra = {}
        for j, condition in enumerate(item.condition_maps):
            cond_path = out / f"{stem}.cond{j}.png"
            write_png_atomic(condition.convert("RGB"), cond_path)
            extra[f"Adapter {j} map"] = cond_path.name
        paths.append(str(write_png_atomic(item.image, out / f"{stem}.png", png_info(item.request, extra))))
    return paths


def run_lines(registry, lines: Iterable[BatchLine], out: str | Path, base: str | Path,
              process: int = 0, log=print) -> tuple[int, int]:
    """Run `lines` one after the other; returns (done, failed). Each gets a result line."""
    out, base = Path(out), Path(base)
    out.mkdir(parents=True, exist_ok=True)
    done = failed = 0
    for line in lines:
        started = time.perf_counter()
        record: dict[str, Any] = {"line": line.number, "digest": line.digest, "process": process}
        try:
            request, extra = request_from_line(line, registry, base)
            record.update(extra)
            result = registry.generate(request)
            record.update(status="ok", paths=save_images(result, out, line.number), seeds=result.seeds,
                          request=result.request.to_json_dict())
            done += 1
        except (InvalidRequest, ValueError, TypeError, OSError) as error:
            field = getattr(error, "field", None)
            record.update(status="error", error=str(error).splitlines()[0] if str(error) else type(error).__name__)
            if field:
                record["field"] = field
            failed += 1
        record["seconds"] = round(time.perf_counter() - started, 3)
        append_result(out, record)
        log(f"line {line.number}: {record['status']}"
            + (f" {' '.join(record['paths'])}" if record["status"] == "ok" else f": {record['error']}"))
    return done, failed

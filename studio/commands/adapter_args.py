"""`generate`'s adapter flags: `--adapter KIND=PATH[:WEIGHT]` (repeatable), `--preprocess`, `--adapter-factor`.

    python -m studio generate --prompt "a red star" --adapter sketch=drawing.png:0.8 --adapter depth=d.png:0.5
    python -m studio generate --prompt "a red star" --adapter edge=photo.jpg --preprocess

Without --preprocess each picture is taken as a condition map (a drawing on white paper is turned into
white strokes on black); with it, each kind's extractor runs (Canny for edge, depth estimation, ...).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from pipelines.adapters.image_io import open_image
from pipelines.requests import AdapterInput, InvalidRequest


def add_adapter_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("T2I-Adapter conditions")
    group.add_argument("--adapter", action="append", default=[], metavar="KIND=PATH[:WEIGHT]",
                       help="a condition picture for the adapter of KIND (see the Adapters tab or `models`), "
                            "weight 1.0 unless given; repeat for several conditions")
    group.add_argument("--preprocess", action="store_true",
                       help="extract each condition map from a plain picture (edges, depth, sketch lines)")
    group.add_argument("--adapter-factor", type=float, default=1.0, metavar="X",
                       help="SDXL only: the fraction of the steps that follow the conditions (default 1.0)")


def parse_adapter(text: str) -> tuple[str, str, float]:
    """`KIND=PATH[:WEIGHT]` -> (kind, path, weight). A path that itself contains ':' works: only a last
    part that reads as a number is taken as the weight."""
    kind, separator, rest = text.partition("=")
    if not separator or not kind.strip() or not rest.strip():
        raise InvalidRequest("adapters", f"--adapter takes KIND=PATH[:WEIGHT], e.g. sketch=drawing.png:0.8; "
                                         f"got {text!r}")
    path, weight = rest, 1.0
    head, colon, tail = rest.rpartition(":")
    if colon and head:
        try:
            weight = float(tail)
            path = head
        except ValueError:
            if not Path(rest).exists():
                raise InvalidRequest("adapters", f"the weight in {text!r} must be a number, got {tail!r}") from None
    return kind.strip(), path, weight


def adapter_fields(args: argparse.Namespace) -> dict:
    """The request fields the adapter flags set (nothing when no --adapter was given)."""
    if not args.adapter:
        if args.preprocess:
            raise InvalidRequest("adapters", "--preprocess needs at least one --adapter KIND=PATH")
        return {}
    conditions = []
    for text in args.adapter:
        kind, path, weight = parse_adapter(text)
        image = open_image(path)  # read now, so a missing or broken file is named before any model loads
        conditions.append(AdapterInput(kind=kind, image=image, weight=weight, preprocess=args.preprocess))
    return {"adapters": conditions, "adapter_conditioning_factor": args.adapter_factor}

"""Assemble the bundled model folder (diffusers format, fp16 safetensors) from the training runs.

    python -m training.shapes.export --runs runs/shapes --out assets/shapes [--unet DIR] [--adapters DIR]
                                     [--adapter-scale KIND=FACTOR ...]
    python -m training.shapes.export --update --unet RUN [--adapters DIR] --out assets/shapes  # those alone
    python -m training.shapes.export --placeholder --out DIR   # random weights, same layout

Layout: the StableDiffusionPipeline folder, plus adapters/{sketch,edge,depth} (T2IAdapter folders)."""
from __future__ import annotations

import argparse
import json
import pathlib

import torch

from .architecture import ADAPTER, build_components
from .tokenizer import build_tokenizer
from .train_adapter import scale_residuals

ADAPTER_KINDS = ("sketch", "edge", "depth")


def save_tokenizer(tokenizer, folder: pathlib.Path):
    tokenizer.save_pretrained(folder)
    # vocab.json / merges.txt too, so tools that read CLIP's classic files (and from_single_file) work.
    vocab = dict(sorted(tokenizer.get_vocab().items(), key=lambda item: item[1]))  # same bytes every export
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    merges = tokenizer.backend_tokenizer.model.__getstate__()  # bytes of the BPE model's JSON
    bpe = json.loads(merges)
    lines = [" ".join(m) if isinstance(m, list) else m for m in bpe["merges"]]
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(lines) + "\n")


def export(out: pathlib.Path, runs: pathlib.Path | None, unet_run: pathlib.Path | None = None,
           adapters_run: pathlib.Path | None = None, adapter_scales: dict[str, float] | None = None):
    """`unet_run` (default runs/unet) holds unet/ and text_encoder/; `adapters_run` (default runs/adapters) KIND/.
    `adapter_scales` bakes a weight into an adapter: its residuals come out that many times larger, exactly as
    if the studio ran it at that weight (the denoising loss cannot see how strongly a drawing should win over
    the prompt under guidance, so that is measured after training and set here)."""
    from diffusers import AutoencoderKL, StableDiffusionPipeline, T2IAdapter, UNet2DConditionModel
    from transformers import CLIPTextModel

    tokenizer = build_tokenizer()
    components = build_components(tokenizer)
    if runs is not None:
        components["vae"] = AutoencoderKL.from_pretrained(runs / "vae")
        unet_run = unet_run or runs / "unet"
        components["unet"] = UNet2DConditionModel.from_pretrained(unet_run / "unet")
        components["text_encoder"] = CLIPTextModel.from_pretrained(unet_run / "text_encoder")
    pipe = StableDiffusionPipeline(**components, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.to(torch.float16)
    pipe.save_pretrained(out, safe_serialization=True)
    save_tokenizer(tokenizer, out / "tokenizer")
    if runs is None:
        for kind in ADAPTER_KINDS:
            torch.manual_seed(ADAPTER_KINDS.index(kind))
            T2IAdapter(**ADAPTER).to(torch.float16).save_pretrained(out / "adapters" / kind, safe_serialization=True)
    else:
        save_adapters(out, adapters_run or runs / "adapters", adapter_scales)


def update(out: pathlib.Path, unet_run: pathlib.Path, adapters_run: pathlib.Path | None = None,
           adapter_scales: dict[str, float] | None = None):
    """Replace only the UNet (and the adapters, when given) of the model folder `out`, keeping its VAE, text
    encoder and tokenizer: continuing the committed model, whose text encoder is stage 8's student, not
    `unet_run`'s."""
    from diffusers import UNet2DConditionModel

    if not (out / "model_index.json").exists():
        raise SystemExit(f"--update: {out} is not a model folder (no model_index.json)")
    unet = UNet2DConditionModel.from_pretrained(unet_run / "unet")
    unet.to(torch.float16).save_pretrained(out / "unet", safe_serialization=True)
    if adapters_run is not None:
        save_adapters(out, adapters_run, adapter_scales)


def save_adapters(out: pathlib.Path, adapters_run: pathlib.Path, adapter_scales: dict[str, float] | None):
    """Each KIND/ run found in `adapters_run`, fp16, into out/adapters/KIND, its baked weight applied."""
    from diffusers import T2IAdapter

    for kind in ADAPTER_KINDS:
        source = adapters_run / kind
        if not (source / "config.json").exists():
            continue
        adapter = T2IAdapter.from_pretrained(source, dtype=torch.float32)
        if kind in (adapter_scales or {}):
            scale_residuals(adapter, adapter_scales[kind])
        adapter.to(torch.float16).save_pretrained(out / "adapters" / kind, safe_serialization=True)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", default="runs/shapes")
    parser.add_argument("--out", default="assets/shapes")
    parser.add_argument("--unet", help="the UNet run (unet/, text_encoder/); default RUNS/unet")
    parser.add_argument("--adapters", help="the adapter runs (KIND/ each); default RUNS/adapters")
    parser.add_argument("--adapter-scale", nargs="*", default=[], metavar="KIND=FACTOR",
                        help="bake a weight into an adapter, e.g. sketch=1.6 (its residuals times FACTOR)")
    parser.add_argument("--update", action="store_true",
                        help="replace only --unet's UNet (and the --adapters given) in the --out model folder")
    parser.add_argument("--placeholder", action="store_true", help="random weights (for code paths only)")
    args = parser.parse_args(argv)
    optional = lambda value: pathlib.Path(value) if value else None  # noqa: E731
    scales = parse_scales(parser, args.adapter_scale)
    adapters = optional(args.adapters) or (None if args.update else pathlib.Path(args.runs) / "adapters")
    unmatched = [kind for kind in scales if adapters is None or not (adapters / kind / "config.json").exists()]
    if unmatched:  # checked before anything is written
        parser.error(f"--adapter-scale: no {', '.join(unmatched)} adapter run in {adapters}")
    if args.update:
        if not args.unet:
            parser.error("--update needs --unet (and takes --adapters)")
        return update(pathlib.Path(args.out), pathlib.Path(args.unet), optional(args.adapters), scales)
    export(pathlib.Path(args.out), None if args.placeholder else pathlib.Path(args.runs), optional(args.unet),
           optional(args.adapters), scales)


def parse_scales(parser: argparse.ArgumentParser, items: list[str]) -> dict[str, float]:
    scales = {}
    for item in items:
        kind, _, factor = item.partition("=")
        try:
            value = float(factor)
        except ValueError:
            value = 0.0
        if kind not in ADAPTER_KINDS or not value > 0:
            parser.error(f"--adapter-scale: {item!r} is not KIND=FACTOR with KIND one of {', '.join(ADAPTER_KINDS)}"
                         " and FACTOR > 0")
        scales[kind] = value
    return scales


if __name__ == "__main__":
    main()

"""`python -m studio export --model KEY|PATH [--lora PATH[:WEIGHT] ...] --out FILE.safetensors`: one
original-layout file (A1111 / ComfyUI / Civitai style) from a diffusers folder, a DreamBooth result, a
checkpoint-N folder or a single file, with any LoRAs folded in."""
from __future__ import annotations

import argparse
from pathlib import Path

NAME = "export"
HELP = "write a model (optionally with LoRAs fused in) as one original-layout .safetensors file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="KEY|PATH", help="a model key (see `models`) or a path")
    parser.add_argument("--lora", action="append", default=[], metavar="PATH[:WEIGHT]",
                        help="a LoRA (key, folder or file) to fold in, weight 1.0 unless given; repeatable")
    parser.add_argument("--out", required=True, metavar="FILE.safetensors", help="the file to write")
    parser.add_argument("--dtype", default="fp16", choices=("fp16", "bf16", "fp32"),
                        help="precision of the written weights (default: fp16, as most shared files are)")
    parser.add_argument("--allow-ckpt", action="store_true",
                        help="allow reading a pickled .ckpt model (weights only; off by default)")
    parser.add_argument("--models-dir", default="models", metavar="DIR", help="the models folder (default: ./models)")


def run(args: argparse.Namespace) -> int:
    from pipelines import PipelineRegistry
    from pipelines.checkpoints.export import export_components, fuse_loras
    from pipelines.checkpoints.folders import text_to_image_pipeline
    from pipelines.dreambooth.base_model import load_training_base
    from pipelines.loras import check_loras, parse_lora_spec

    registry = PipelineRegistry(models_dir=args.models_dir, device="cpu", dtype="float32", save_outputs=False,
                                allow_ckpt=args.allow_ckpt)
    spec = registry.model_info(args.model)
    loras = check_loras([parse_lora_spec(text) for text in args.lora])
    resolved = [(registry.lora_info(ref), weight) for ref, weight in loras]
    components, family = load_training_base(args.model, registry, allow_ckpt=args.allow_ckpt)
    if resolved:
        fuse_loras(text_to_image_pipeline(components), [(lora.path, weight) for lora, weight in resolved])
    words = list(spec.trigger_words) + [w for lora, _ in resolved for w in lora.trigger_words]
    facts = {"exported_from": str(Path(args.model).resolve()) if Path(args.model).exists() else args.model}
    if words:
        facts["trigger_words"] = words
    if resolved:
        facts["loras"] = [[lora.path, weight] for lora, weight in resolved]
    target = export_components(components, args.out, dtype=args.dtype, family=family, sidecar=facts)
    print(target, flush=True)
    return 0

"""`python -m studio download KEY` / `--adapter FAMILY/KIND`: fetch weights into the Hugging Face cache.

The catalog finds downloaded models and adapters there, so after a download the key just works, offline.
Only what the studio loads is fetched: configs, tokenizers and the diffusers-format weights (no safety
checker, no single-file duplicate at the repository root). An adapter's .safetensors weights are preferred;
repositories published before safetensors (TencentARC's *_sd14v1) have only diffusion_pytorch_model.bin,
which is fetched instead (diffusers reads it with torch's weights-only loader).
"""
from __future__ import annotations

import argparse
import sys

NAME = "download"
HELP = "download a built-in model (sd15, sd21, sdxl) or a T2I-Adapter from the Hugging Face Hub"

CONFIG_PATTERNS = ["model_index.json", "*/*.json", "*/*.txt"]
WEIGHT_PATTERNS = {None: ["*/diffusion_pytorch_model.safetensors", "*/model.safetensors"],
                   "fp16": ["*/diffusion_pytorch_model.fp16.safetensors", "*/model.fp16.safetensors"]}
SKIPPED = ["safety_checker/*", "feature_extractor/*"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("key", nargs="?", help="a built-in model key: sd15, sd21 or sdxl")
    parser.add_argument("--adapter", metavar="FAMILY/KIND", help="a T2I-Adapter, e.g. sd1/depth or sdxl/edge")
    parser.add_argument("--variant", choices=["fp16"], default=None,
                        help="fetch the half-precision weights (about half the download)")
    parser.add_argument("--cache-dir", default=None, help="Hugging Face cache folder (default: HF_HOME's)")


def _model_download(key: str, variant: str | None) -> tuple[str, dict]:
    from pipelines.catalog import HUB_MODELS
    from pipelines.requests import InvalidRequest

    if key not in HUB_MODELS:
        raise InvalidRequest("key", f"unknown model {key!r}; downloadable models: {', '.join(HUB_MODELS)}")
    return HUB_MODELS[key].repo_id, {"allow_patterns": CONFIG_PATTERNS + WEIGHT_PATTERNS[variant],
                                     "ignore_patterns": SKIPPED}


def adapter_weight_patterns(repo_files: list[str], subfolder: str | None) -> list[str]:
    """Which weight files of an adapter repository to fetch, given the files it holds: the .safetensors,
    or the .bin when there is no .safetensors beside the adapter's config; diffusers' standard file name
    alone when it is there (not its fp16 twin too)."""
    prefix = f"{subfolder}/" if subfolder else ""
    names = [path[len(prefix):] for path in repo_files if path.startswith(prefix)]
    names = [name for name in names if "/" not in name]
    for suffix in (".safetensors", ".bin"):
        standard = f"diffusion_pytorch_model{suffix}"
        if standard in names:
            return [f"{prefix}{standard}"]
        if any(name.endswith(suffix) for name in names):
            return [f"{prefix}*{suffix}"]
    raise LookupError(f"no adapter weights (.safetensors or .bin) in {prefix or 'the top folder'} of the repository")


def _adapter_spec(name: str):
    from pipelines.adapters.catalog import adapter_spec
    from pipelines.requests import InvalidRequest

    family, _, kind = name.partition("/")
    if not kind:
        raise InvalidRequest("adapter", f"write FAMILY/KIND, e.g. sd1/depth; got {name!r}")
    spec = adapter_spec(family, kind)
    if spec.is_local:
        raise InvalidRequest("adapter", f"{name} is bundled at {spec.source}: nothing to download")
    return spec


def _adapter_options(spec) -> dict:
    from huggingface_hub import list_repo_files

    prefix = f"{spec.subfolder}/" if spec.subfolder else ""
    weights = adapter_weight_patterns(list_repo_files(spec.source), spec.subfolder)
    return {"allow_patterns": [f"{prefix}config.json", *weights]}


def run(args: argparse.Namespace) -> int:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    from pipelines.requests import InvalidRequest

    if bool(args.key) == bool(args.adapter):
        raise InvalidRequest("key", "give either a model KEY or --adapter FAMILY/KIND")
    if args.key:
        repo_id, options = _model_download(args.key, args.variant)
    else:
        spec = _adapter_spec(args.adapter)
        repo_id, options = spec.source, None
    try:
        if options is None:  # which weight files an adapter has is asked of the hub first
            options = _adapter_options(spec)
        folder = snapshot_download(repo_id, cache_dir=args.cache_dir, **options)
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, LookupError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"error: could not download {repo_id}: {first_line}", file=sys.stderr)
        return 1
    print(folder)
    return 0

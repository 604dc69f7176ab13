"""Options every command that loads models shares, and the registry they describe."""
from __future__ import annotations

import argparse


def add_registry_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models-dir", default="models", metavar="DIR",
                        help="folder scanned for extra models and LoRAs (default: ./models)")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda, cuda:N or mps (default: STUDIO_DEVICE, else the best available)")
    parser.add_argument("--dtype", default=None,
                        help="float32, float16 or bfloat16 (default: float16 on GPUs, float32 on CPU)")


def make_registry(args: argparse.Namespace, *, outputs_dir: str = "outputs", save_outputs: bool = False,
                  allow_ckpt: bool = False):
    # Imported here: loading torch and diffusers is only worth it for commands that use models.
    from pipelines import PipelineRegistry

    return PipelineRegistry(models_dir=args.models_dir, outputs_dir=outputs_dir, device=args.device,
                            dtype=args.dtype, save_outputs=save_outputs, allow_ckpt=allow_ckpt)

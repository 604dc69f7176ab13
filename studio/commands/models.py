"""`python -m studio models`: every model key the studio knows, whether its weights are here, and LoRAs."""
from __future__ import annotations

import argparse

from studio.commands.common import add_registry_arguments, make_registry

NAME = "models"
HELP = "list the models (built-in keys and the models folder) and whether each is on this machine"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--names-only", action="store_true", help="print only the keys, one per line")
    add_registry_arguments(parser)


def run(args: argparse.Namespace) -> int:
    registry = make_registry(args)
    keys = registry.model_names()
    if args.names_only:
        print("\n".join(keys))
        return 0
    width = max(len(key) for key in keys)
    for key in keys:
        spec = registry.model_info(key)
        state = "ready" if spec.available else f"not downloaded (python -m studio download {key})"
        about = f" - {spec.description}" if spec.description else ""
        print(f"{key:<{width}}  {spec.family:<6}  {state}{about}")
    for key in registry.lora_names():
        lora = registry.lora_info(key)
        print(f"{key:<{width}}  lora    for {lora.base or 'any model'}: {lora.path}")
    return 0

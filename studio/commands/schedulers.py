"""`python -m studio schedulers`: the sampler names a request accepts, with their suggested steps."""
from __future__ import annotations

import argparse

NAME = "schedulers"
HELP = "list the schedulers (samplers) and their suggested step counts"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--names-only", action="store_true", help="print only the names, one per line")


def run(args: argparse.Namespace) -> int:
    from pipelines import scheduler_names, suggested_steps

    names = scheduler_names()
    width = max(len(name) for name in names)
    for name in names:
        print(name if args.names_only else f"{name:<{width}}  {suggested_steps(name):>3} steps")
    return 0

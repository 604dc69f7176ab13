"""`python -m studio schedulers`: the samplers a request accepts, their suggested steps and what their
"Automatic" schedule is, then the schedule types."""
from __future__ import annotations

import argparse

NAME = "schedulers"
HELP = "list the samplers (with suggested steps and their Automatic schedule) and the schedule types"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--names-only", action="store_true", help="print only the sampler names, one per line")


def run(args: argparse.Namespace) -> int:
    from pipelines.schedulers import resolve_sampler, schedule_type_names, scheduler_names, suggested_steps

    names = scheduler_names()
    if args.names_only:
        print("\n".join(names))
        return 0
    width = max(len(name) for name in names)
    for name in names:
        automatic = resolve_sampler(name).schedule or "none (diffusers' own)"
        print(f"{name:<{width}}  {suggested_steps(name):>3} steps  Automatic = {automatic}")
    print("\nSchedule types (--schedule-type): " + ", ".join(schedule_type_names()))
    return 0

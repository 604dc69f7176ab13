"""`python -m studio batch prompts.jsonl --out DIR`: one request per line, resumable (pipelines/batch.py).

On several processes, GPUs or machines, launch the same command through accelerate; each process takes an
even share of the lines still to do, on its own device:

    accelerate launch --num_processes 4 -m studio batch prompts.jsonl --out results/
    ACCELERATE_USE_CPU=true torchrun --standalone --nproc_per_node 2 -m studio batch prompts.jsonl --out results/
"""
from __future__ import annotations

import argparse
from pathlib import Path

from studio.commands.common import add_registry_arguments, make_registry

NAME = "batch"
HELP = "run one request per line of a JSON Lines file (resumable; split across processes by accelerate)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help='JSON Lines: one object of request fields per line, e.g. {"prompt": "a red '
                                     'star", "seed": 1}; optional "id" is echoed in the result')
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="where NNNNN-K.png (line N, image K) and results.jsonl go")
    parser.add_argument("--allow-ckpt", action="store_true",
                        help="allow pickled .ckpt models (read weights-only; off by default: pickles can run code)")
    add_registry_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    from pipelines.batch import pending, read_lines, read_results, run_lines

    source = Path(args.file)
    lines = read_lines(source)  # a missing file ends the command with its message
    # `accelerate launch --cpu` (or ACCELERATE_USE_CPU=true under torchrun) asks for CPU processes; a plain
    # PartialState() would not read that flag and would see one process per launch.
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU") or args.device == "cpu")
    out = Path(args.out)
    if state.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
    todo = pending(lines, read_results(out))
    state.wait_for_everyone()  # every process has read the results before any appends to them
    with state.split_between_processes(todo) as share:
        mine = list(share)
    if args.device is None:
        args.device = str(state.device)  # accelerate's device for this process (cuda:LOCAL_RANK, cpu, ...)
    prefix = f"[{state.process_index + 1}/{state.num_processes}] " if state.num_processes > 1 else ""
    print(f"{prefix}{len(mine)} of {len(todo)} lines to do ({len(lines) - len(todo)} of {len(lines)} done before) "
          f"on {args.device}", flush=True)
    registry = make_registry(args, outputs_dir=str(out), save_outputs=False, allow_ckpt=args.allow_ckpt)
    run_lines(registry, mine, out, source.parent, process=state.process_index,
              log=lambda text: print(prefix + text, flush=True))
    state.wait_for_everyone()
    results = read_results(out)
    failed = [line.number for line in lines if results.get(line.number, {}).get("status") != "ok"]
    if state.is_main_process:
        print(f"{len(lines) - len(failed)} of {len(lines)} lines done"
              + (f"; failed: lines {', '.join(map(str, failed))} (see {out / 'results.jsonl'})" if failed else ""),
              flush=True)
    # Only the main process reports failure: a launcher stops every process as soon as one exits non-zero.
    return 1 if failed and state.is_main_process else 0

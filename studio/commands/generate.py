"""`python -m studio generate --prompt ...`: write PNGs (with their parameters) and print their paths.

    python -m studio generate --prompt "a red star" --model models/my-model --lora models/ink.safetensors:0.6
"""
from __future__ import annotations

import argparse

from pipelines.loras import parse_lora_spec
from pipelines.requests import GenerationRequest
from studio.commands.adapter_args import add_adapter_arguments, adapter_fields
from studio.commands.common import add_registry_arguments, make_registry
from pipelines.modes.images import fitted_size
from studio.commands.mode_args import add_mode_arguments, mode_fields
from studio.forms import build_request

NAME = "generate"
HELP = "generate images from a prompt; prints one PNG path per line"
DEFAULTS = GenerationRequest(prompt="")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompt", required=True, help="what to draw")
    parser.add_argument("--negative-prompt", default=DEFAULTS.negative_prompt, help="what to steer away from")
    parser.add_argument("--model", default=DEFAULTS.model, metavar="KEY|PATH",
                        help=f"a model key (see `models`) or a model folder/file (default: {DEFAULTS.model})")
    parser.add_argument("--scheduler", default=DEFAULTS.scheduler, metavar="NAME",
                        help=f"sampler name (see `schedulers`; default: {DEFAULTS.scheduler})")
    parser.add_argument("--schedule-type", default=DEFAULTS.schedule_type, metavar="NAME",
                        help="A1111's schedule type: Automatic (the sampler's own; default), Uniform, Karras, "
                             "Exponential, ... (see `schedulers`)")
    parser.add_argument("--steps", type=int, default=DEFAULTS.steps, metavar="N")
    parser.add_argument("--guidance", type=float, default=DEFAULTS.guidance_scale, metavar="X",
                        help=f"classifier-free guidance scale (CFG; default: {DEFAULTS.guidance_scale})")
    parser.add_argument("--width", type=int, default=None, metavar="W", help="default: the model's size")
    parser.add_argument("--height", type=int, default=None, metavar="H", help="default: the model's size")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed, metavar="S", help="-1 (default): random")
    parser.add_argument("--num-images", type=int, default=DEFAULTS.num_images, metavar="N")
    parser.add_argument("--out", default="outputs", metavar="DIR", help="where the PNGs go (default: ./outputs)")
    parser.add_argument("--lora", action="append", default=[], metavar="PATH[:WEIGHT]",
                        help="a LoRA (key from `models`, folder or .safetensors file), weight 1.0 unless given; "
                             "repeat for several")
    parser.add_argument("--clip-skip", type=int, default=DEFAULTS.clip_skip, metavar="N",
                        help="AUTOMATIC1111's Clip skip: read the prompt from the N-th last text-encoder layer "
                             f"(1 to 12; default: {DEFAULTS.clip_skip}; SDXL ignores it, as A1111 does)")
    parser.add_argument("--step-cache", type=int, default=DEFAULTS.step_cache, metavar="N",
                        help="0 (default): off; N: recompute the UNet's deep features every N-th step (faster)")
    parser.add_argument("--allow-ckpt", action="store_true",
                        help="allow a pickled .ckpt model (read weights-only; off by default: pickles can run code)")
    add_adapter_arguments(parser)
    add_mode_arguments(parser)
    add_registry_arguments(parser)


def request_from_args(args: argparse.Namespace, registry) -> GenerationRequest:
    limits = registry.limits(args.model)
    modes = mode_fields(args)
    # the default size: the picture's own (fitted to the model) when there is one, else the model's
    default_size = fitted_size(limits, modes["init_image"]) if "init_image" in modes else \
        (limits.default_width, limits.default_height)
    return build_request(
        prompt=args.prompt, negative_prompt=args.negative_prompt, model=args.model, scheduler=args.scheduler,
        schedule_type=args.schedule_type, steps=args.steps, guidance_scale=args.guidance,
        width=args.width if args.width is not None else default_size[0],
        height=args.height if args.height is not None else default_size[1],
        seed=args.seed, num_images=args.num_images, loras=[parse_lora_spec(text) for text in args.lora],
        clip_skip=args.clip_skip, step_cache=args.step_cache, **adapter_fields(args), **modes)


def run(args: argparse.Namespace) -> int:
    registry = make_registry(args, outputs_dir=args.out, save_outputs=True, allow_ckpt=args.allow_ckpt)
    result = registry.generate(request_from_args(args, registry))
    for path in result.paths:
        print(path, flush=True)
    return 0

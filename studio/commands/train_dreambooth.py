"""`python -m studio train-dreambooth --model KEY --images DIR --instance-prompt "a photo of sks dog" --out DIR`

LoRA by default (--full for a full fine-tune); --prior-preservation with --class-prompt keeps the class
itself intact. Settings left out take the model family's DreamBooth defaults (pipelines/families.py,
Family.dreambooth; --help lists them): for the SD families a rank-4 LoRA, 400 steps of one picture at 1e-4
and no prior preservation; the bundled shapes model has its own, which teach it a new shape. A checkpoint is
written every --checkpoint-every steps; running the same command again after an interruption continues from
the last one. Ctrl-C stops cleanly (a checkpoint is saved first). Runs through accelerate:
`accelerate launch -m studio train-dreambooth ...` uses every configured GPU.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

NAME = "train-dreambooth"
HELP = "teach a model a subject from 3-20 images (DreamBooth; LoRA by default)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pipelines.dreambooth.config import FULL_LEARNING_RATE, TrainConfig

    defaults = TrainConfig(model="", images="", instance_prompt="", out="")
    parser.add_argument("--model", required=True, metavar="KEY|PATH", help="the base model (key or path)")
    parser.add_argument("--images", required=True, metavar="DIR", help="folder with 3-20 images of the subject")
    parser.add_argument("--instance-prompt", required=True, metavar="TEXT", help='e.g. "a photo of sks dog"')
    parser.add_argument("--class-prompt", default=None, metavar="TEXT",
                        help='e.g. "a photo of a dog"; ' + family_defaults("class_prompt"))
    parser.add_argument("--prior-preservation", action=argparse.BooleanOptionalAction, default=None,
                        help="mix in class images drawn by the base model (needs a class prompt); "
                             + family_defaults("prior_preservation"))
    parser.add_argument("--num-class-images", type=int, default=None, metavar="N",
                        help=family_defaults("num_class_images"))
    parser.add_argument("--prior-loss-weight", type=float, default=None, metavar="X",
                        help="the class images' loss against the subject's; " + family_defaults("prior_loss_weight"))
    parser.add_argument("--prior-target", default=None, metavar="images|model",
                        help="train class images toward their noise (DreamBooth) or the base model's own "
                             "prediction for them (keeps its answers; suits the bundled model); "
                             + family_defaults("prior_target"))
    method = parser.add_mutually_exclusive_group()
    method.add_argument("--lora", dest="method", action="store_const", const="lora", help="train a LoRA (default)")
    method.add_argument("--full", dest="method", action="store_const", const="full", help="fine-tune the whole UNet")
    parser.set_defaults(method="lora")
    parser.add_argument("--steps", type=int, default=None, metavar="N", help=family_defaults("steps"))
    parser.add_argument("--learning-rate", type=float, default=None, metavar="X",
                        help=f"a LoRA's {family_defaults('learning_rate')}; {FULL_LEARNING_RATE:g} for --full")
    parser.add_argument("--resolution", type=int, default=None, metavar="R",
                        help="training size in pixels; " + family_defaults("resolution"))
    parser.add_argument("--seed", type=int, default=defaults.seed, metavar="S")
    parser.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every, metavar="N")
    parser.add_argument("--keep-checkpoints", type=int, default=None, metavar="N", help="default: keep all")
    parser.add_argument("--lora-rank", type=int, default=None, metavar="R", help=family_defaults("lora_rank"))
    parser.add_argument("--batch-size", type=int, default=None, metavar="N", help=family_defaults("batch_size"))
    parser.add_argument("--mixed-precision", default=defaults.mixed_precision, choices=("no", "fp16", "bf16"))
    parser.add_argument("--class-data-dir", default=None, metavar="DIR",
                        help="where class images are cached (default: .class_images beside --out)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (inside --models-dir to list it)")
    parser.add_argument("--allow-ckpt", action="store_true", help="allow a pickled .ckpt base model (weights only)")
    parser.add_argument("--models-dir", default="models", metavar="DIR", help="the models folder (default: ./models)")


def family_defaults(name: str) -> str:
    """'default: 400 (sdxl, sd2, sd1), 600 (shapes)': a DreamBooth default per family, for --help."""
    from pipelines.families import FAMILIES

    def shown(value) -> str:
        if isinstance(value, bool):
            return "on" if value else "off"
        return "none" if value is None else repr(value) if isinstance(value, str) else f"{value:g}"

    families_of: dict[str, list[str]] = {}
    for key, family in FAMILIES.items():
        value = family.training_resolution if name == "resolution" else getattr(family.dreambooth, name)
        families_of.setdefault(shown(value), []).append(key)
    return "default: " + ", ".join(f"{value} ({', '.join(keys)})" for value, keys in families_of.items())


def config_from_args(args: argparse.Namespace):
    from pipelines.dreambooth.config import TrainConfig

    return TrainConfig(model=args.model, images=args.images, instance_prompt=args.instance_prompt, out=args.out,
                       class_prompt=args.class_prompt, prior_preservation=args.prior_preservation,
                       num_class_images=args.num_class_images, prior_loss_weight=args.prior_loss_weight,
                       prior_target=args.prior_target,
                       method=args.method, steps=args.steps, learning_rate=args.learning_rate,
                       resolution=args.resolution, seed=args.seed, checkpoint_every=args.checkpoint_every,
                       keep_checkpoints=args.keep_checkpoints, batch_size=args.batch_size,
                       lora_rank=args.lora_rank, mixed_precision=args.mixed_precision,
                       class_data_dir=args.class_data_dir)


def _printer(total_hint: int):
    main_process = os.environ.get("RANK", "0") == "0"  # under accelerate launch, one process reports
    every = max(1, total_hint // 100)

    def show(update) -> None:
        if not main_process:
            return
        if update.phase == "training" and update.step % every and update.step != update.total:
            return
        loss = f"  loss {update.loss:.4f}" if update.loss is not None else ""
        note = f"  ({update.message})" if update.message else ""
        print(f"{update.phase}: {update.step}/{update.total}{loss}{note}", flush=True)

    return show


def _stop_on_ctrl_c() -> threading.Event:
    """First Ctrl-C: finish the step, save a checkpoint, stop. A second one interrupts at once."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        return stop

    def handle(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("stopping after this step (Ctrl-C again to abort without a checkpoint)", file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, handle)
    return stop


def run(args: argparse.Namespace) -> int:
    from pipelines import PipelineRegistry
    from pipelines.dreambooth.base_model import load_training_base
    from pipelines.dreambooth.config import TrainingStopped
    from pipelines.dreambooth.train import train_dreambooth

    registry = PipelineRegistry(models_dir=args.models_dir, device="cpu", dtype="float32", save_outputs=False,
                                allow_ckpt=args.allow_ckpt)
    # The family's defaults fill in what was left out; checked before the model is loaded (an unknown model
    # is named here too).
    config = config_from_args(args).for_family(registry.model_info(args.model).family)
    config.validate()
    components, family = load_training_base(args.model, registry, allow_ckpt=args.allow_ckpt)
    stop = _stop_on_ctrl_c()
    try:
        result = train_dreambooth(config, components, family=family, on_progress=_printer(config.steps),
                                  should_stop=stop.is_set)
    except TrainingStopped as stopped:
        print(f"stopped: {stopped}", file=sys.stderr)
        return 130
    if os.environ.get("RANK", "0") != "0":
        return 0
    registry.refresh()
    out = Path(result.out).resolve()
    if result.method == "lora":
        kind = "--lora"
        keys = [k for k in registry.lora_names() if Path(registry.lora_info(k).path).resolve().parent == out]
    else:
        kind = "--model"
        keys = [k for k in registry.model_names() if Path(registry.model_info(k).source).resolve() == out]
    print(result.out, flush=True)
    if keys:
        print(f"registered: use it with {kind} {keys[0]}", flush=True)
    else:
        print(f"not inside the models folder ({args.models_dir}); use it with {kind} {result.out}", flush=True)
    return 0

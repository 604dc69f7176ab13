"""What a DreamBooth run is asked to do (a frozen, validated dataclass) and what it reports back."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipelines.families import FAMILIES, get_family
from pipelines.requests import InvalidRequest

METHODS = ("lora", "full")
MIXED_PRECISION = ("no", "fp16", "bf16")
# What the class images are trained toward: the noise added to them (DreamBooth's prior preservation), or the
# base model's own prediction for them (a distillation prior: it keeps the base model's answers, not just
# its pictures, and suits models whose guidance is calibrated, like the bundled one).
PRIOR_TARGETS = ("images", "model")
FULL_LEARNING_RATE = 5e-6  # a full fine-tune's default in every family; a LoRA's is the family's
DEFAULT_RESOLUTION = {key: f.training_resolution for key, f in FAMILIES.items()}  # pipelines/families.py
# Settings left None take the model family's DreamBooth defaults (pipelines/families.py, Family.dreambooth),
# filled in by `for_family` once the family is known.
FAMILY_DEFAULTED = ("steps", "lora_rank", "batch_size", "prior_preservation", "num_class_images", "prior_loss_weight",
                    "prior_target")
CLASS_IMAGES_DIR = ".class_images"  # beside the output folder; a leading dot keeps the models scan out
MAX_STEPS = 100_000


@dataclass(frozen=True)
class TrainConfig:
    model: str  # registry key or path of the base model
    images: str  # folder of 3-20 instance images
    instance_prompt: str  # "a photo of sks dog"
    out: str
    # None, here and below: the model family's default (pipelines/families.py, Family.dreambooth; README,
    # "DreamBooth defaults"), filled in by for_family. The SD families: a rank-4 LoRA, 400 steps of one
    # picture at 1e-4, no prior preservation; the bundled shapes model has its own.
    class_prompt: str | None = None  # "a photo of a dog"; None: the family's, when prior preservation is on
    prior_preservation: bool | None = None
    num_class_images: int | None = None
    prior_loss_weight: float | None = None
    prior_target: str | None = None
    method: str = "lora"
    steps: int | None = None
    learning_rate: float | None = None  # None: the family's for a LoRA, 5e-6 for a full fine-tune
    resolution: int | None = None  # None: the family's native size (128 shapes, 512 SD 1.x, 768 SD 2.x, 1024 XL)
    seed: int = 0
    checkpoint_every: int = 100
    keep_checkpoints: int | None = None  # None: keep every checkpoint
    batch_size: int | None = None
    lora_rank: int | None = None
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"
    class_data_dir: str | None = None  # None: <out>/../.class_images/<prompt>-<resolution>-<hash>

    def for_family(self, family: str) -> "TrainConfig":
        """This config with the family's defaults filled in for every setting left None (a setting given,
        even an invalid one, is kept: validate names it)."""
        record = get_family(family)
        defaults = record.dreambooth
        filled = {name: getattr(defaults, name) for name in FAMILY_DEFAULTED if getattr(self, name) is None}
        if self.resolution is None:
            filled["resolution"] = record.training_resolution
        if self.learning_rate is None:
            filled["learning_rate"] = FULL_LEARNING_RATE if self.method == "full" else defaults.learning_rate
        if self.class_prompt is None and filled.get("prior_preservation", self.prior_preservation):
            filled["class_prompt"] = defaults.class_prompt  # None for the SD families: validate asks for one
        return replace(self, **filled) if filled else self

    def validate(self) -> None:
        """Raise InvalidRequest naming the field and its allowed range for the first bad value. Call it on
        a config whose family defaults are filled in (`for_family`)."""
        def need(ok: bool, name: str, message: str) -> None:
            if not ok:
                raise InvalidRequest(name, message)

        unfilled = [name for name in (*FAMILY_DEFAULTED, "learning_rate", "resolution") if getattr(self, name) is None]
        if unfilled:
            raise ValueError(f"fill in the family's defaults first (TrainConfig.for_family): {', '.join(unfilled)}")
        need(bool(self.model), "model", "name a base model (key or path)")
        need(bool(self.instance_prompt.strip()), "instance_prompt", "must not be empty, e.g. 'a photo of sks dog'")
        need(bool(self.out), "out", "name an output folder")
        need(self.method in METHODS, "method", f"must be one of {list(METHODS)}, got {self.method!r}")
        need(1 <= self.steps <= MAX_STEPS, "steps", f"must be between 1 and {MAX_STEPS}, got {self.steps}")
        need(isinstance(self.learning_rate, float) and math.isfinite(self.learning_rate)
             and 0 < self.learning_rate <= 1e-2, "learning_rate",
             f"must be in (0, 0.01], got {self.learning_rate}")
        need(isinstance(self.resolution, int) and 64 <= self.resolution <= 2048 and self.resolution % 8 == 0, "resolution",
             f"must be a multiple of 8 between 64 and 2048, got {self.resolution}")
        need(1 <= self.checkpoint_every <= MAX_STEPS, "checkpoint_every",
             f"must be between 1 and {MAX_STEPS}, got {self.checkpoint_every}")
        need(self.keep_checkpoints is None or self.keep_checkpoints >= 1, "keep_checkpoints",
             f"must be at least 1 (or unset to keep all), got {self.keep_checkpoints}")
        need(1 <= self.batch_size <= 64, "batch_size", f"must be between 1 and 64, got {self.batch_size}")
        need(1 <= self.lora_rank <= 256, "lora_rank", f"must be between 1 and 256, got {self.lora_rank}")
        need(0 <= self.seed < 2**31, "seed", f"must be between 0 and {2**31 - 1}, got {self.seed}")
        need(self.mixed_precision in MIXED_PRECISION, "mixed_precision",
             f"must be one of {list(MIXED_PRECISION)}, got {self.mixed_precision!r}")
        if self.prior_preservation:
            need(bool(self.class_prompt and self.class_prompt.strip()), "class_prompt",
                 "prior preservation needs a class prompt, e.g. 'a photo of a dog'")
            need(1 <= self.num_class_images <= 10_000, "num_class_images",
                 f"must be between 1 and 10000, got {self.num_class_images}")
            need(0 < self.prior_loss_weight <= 10, "prior_loss_weight",
                 f"must be in (0, 10], got {self.prior_loss_weight}")
        need(self.prior_target in PRIOR_TARGETS, "prior_target",  # checked even when unused: a typo says so
             f"must be one of {list(PRIOR_TARGETS)}, got {self.prior_target!r}")

    def class_images_folder(self) -> Path:
        from pipelines.dreambooth.class_images import class_images_folder

        root = Path(self.class_data_dir) if self.class_data_dir else Path(self.out).parent / CLASS_IMAGES_DIR
        if self.class_data_dir:
            return root
        return class_images_folder(root, self.model, self.class_prompt or "", self.resolution)

    def sidecar(self, family: str) -> dict:
        """What the trained model says about itself (the registry shows the trigger words)."""
        return {"trigger_words": [self.instance_prompt], "instance_prompt": self.instance_prompt,
                "class_prompt": self.class_prompt, "family": family, "method": self.method,
                "steps": self.steps, "resolution": self.resolution}


@dataclass(frozen=True)
class TrainProgress:
    phase: str  # "class images" | "encoding" | "resumed" | "training"
    step: int
    total: int
    loss: float | None = None
    message: str = ""


@dataclass(frozen=True)
class TrainResult:
    out: str
    method: str
    steps: int
    loss: float | None
    sidecar: dict = field(default_factory=dict)


class TrainingStopped(RuntimeError):
    """The run was asked to stop; a checkpoint was saved and the same command continues it."""

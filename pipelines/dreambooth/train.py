"""DreamBooth training: teach a base model a subject ("a photo of sks dog") from 3-20 images.

LoRA by default (rank-r adapters on the UNet's transformer blocks: a few MB, fast), a full UNet
fine-tune on request; prior preservation mixes in class images the base model drew, so the class itself
("a dog") keeps its look. It runs through accelerate: `accelerate launch -m studio train-dreambooth ...`
trains on several GPUs unchanged (each process draws its own batch; gradients are averaged).

Every random draw of step k comes from a generator seeded by (seed, k, process), so a run resumed from
`checkpoint-N` continues exactly as the uninterrupted run would have.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pipelines.dreambooth import resume
from pipelines.dreambooth.config import TrainConfig, TrainProgress, TrainResult, TrainingStopped
from pipelines.dreambooth.dataset import encode, load_instance_images
from pipelines.dreambooth.sidecar import read_sidecar
from pipelines.families import get_family

# Attention projections, the transformer blocks' in/out projections and feed-forward layers, and the ResNet
# blocks' two convolutions (kohya's "LoCon"): room to learn a new shape, not just a new look. Outlines are
# drawn by the convolutions at full latent resolution, where SDXL-style UNets (and the bundled model) have no
# attention at all. Still small: at rank 4 in fp16, 7 MB for SD 1.x (3 MB of it attention), 24 MB for SDXL.
LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2",
                "conv1", "conv2"]
RESUME_SETTINGS = ("model", "instance_prompt", "class_prompt", "prior_preservation", "num_class_images",
                   "prior_loss_weight", "prior_target", "method", "learning_rate", "resolution", "seed",
                   "batch_size", "lora_rank")


@dataclass
class _Conditioning:
    """What the frozen text encoder(s) say for a prompt, plus SDXL's extra inputs."""

    hidden: "object"
    added: dict | None


def _encode_prompt(pipeline, prompt: str, resolution: int, device, pooled: bool) -> _Conditioning:
    """`pooled`: the family's UNet also reads pooled text and size ids (SDXL; pipelines/families.py)."""
    import torch

    with torch.no_grad():
        if pooled:
            hidden, _, pooled, _ = pipeline.encode_prompt(prompt, device=device, num_images_per_prompt=1,
                                                          do_classifier_free_guidance=False)
            size = (resolution, resolution, 0, 0, resolution, resolution)  # original size, crop, target size
            time_ids = torch.tensor([size], dtype=hidden.dtype, device=device)
            return _Conditioning(hidden, {"text_embeds": pooled, "time_ids": time_ids})
        hidden, _ = pipeline.encode_prompt(prompt, device, 1, False)
        return _Conditioning(hidden, None)


def _settings(config: TrainConfig) -> dict:
    """What must not change between a run and its resumption (the images included, by content)."""
    import hashlib

    from pipelines.dreambooth.dataset import image_files

    digest = hashlib.sha256()
    for path in image_files(config.images):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return {**{name: getattr(config, name) for name in RESUME_SETTINGS}, "images": digest.hexdigest()[:16]}


def _check_resumable(out: Path, config: TrainConfig) -> tuple[int, Path] | None:
    found = resume.checkpoints(out)
    if not found:
        return None
    saved = {"prior_target": "images", **resume.read_state(found[-1][1]).get("settings", {})}  # older runs lack it
    differs = [name for name, value in _settings(config).items() if saved.get(name) != value]
    if differs:
        raise TrainingConflict(f"out: {out} holds checkpoints of another run (it differs in {', '.join(differs)}); "
                               "choose a new --out, or delete its checkpoint-* folders to start over")
    usable = [(step, path) for step, path in found if step <= config.steps]
    return usable[-1] if usable else None


class TrainingConflict(ValueError):
    """The output folder holds a different run's checkpoints."""


def train_dreambooth(config: TrainConfig, components: dict, *, family: str,
                     on_progress: Callable[[TrainProgress], None] | None = None,
                     should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train on `components` (a private copy: they are changed) and save into `config.out`."""
    import torch
    import torch.nn.functional as F
    from accelerate import Accelerator
    from diffusers import DDPMScheduler

    from pipelines.checkpoints.folders import text_to_image_pipeline
    from pipelines.dreambooth.class_images import ensure_class_images, read_class_images

    config = config.for_family(family)
    config.validate()
    report = on_progress or (lambda progress: None)
    accelerator = Accelerator(mixed_precision=config.mixed_precision)
    device, out = accelerator.device, Path(config.out)
    start = _check_resumable(out, config)
    for name, module in components.items():
        if isinstance(module, torch.nn.Module):
            module.requires_grad_(False).eval().to(device)
    pipeline = text_to_image_pipeline(components, family)
    pipeline.set_progress_bar_config(disable=True)

    pictures = load_instance_images(config.images)  # a bad folder is named before class images are drawn
    class_images = []
    if config.prior_preservation:
        folder = config.class_images_folder()
        if accelerator.is_main_process:
            ensure_class_images(components, config.class_prompt, config.num_class_images, folder, config.resolution,
                                seed=config.seed, model=config.model, should_stop=should_stop,
                                on_progress=lambda k, n: report(TrainProgress("class images", k, n)))
        accelerator.wait_for_everyone()
        class_images = read_class_images(folder, config.num_class_images)
        if len(class_images) < config.num_class_images:
            raise TrainingStopped("stopped while generating class images; run again to continue")
    report(TrainProgress("encoding", 0, 1))
    instance = encode(components["vae"], pictures, config.resolution)
    prior = encode(components["vae"], class_images, config.resolution) if class_images else None
    pooled = get_family(family).pooled_text
    instance_text = _encode_prompt(pipeline, config.instance_prompt, config.resolution, device, pooled)
    class_text = _encode_prompt(pipeline, config.class_prompt, config.resolution, device, pooled) if prior else None
    prior_texts = [class_text] + [_encode_prompt(pipeline, text, config.resolution, device, pooled)
                                  for text in _ordinary_prompts(config, family)]

    unet = components["unet"]
    unet.train()
    if config.method == "lora":
        from peft import LoraConfig

        torch.manual_seed(config.seed)  # the adapters' random initialisation
        from pipelines.module_building import MODULE_BUILDING

        with MODULE_BUILDING:  # generation may be loading a model in another thread (see module_building)
            unet.add_adapter(LoraConfig(r=config.lora_rank, lora_alpha=config.lora_rank, init_lora_weights="gaussian",
                                        target_modules=LORA_TARGETS))
    else:
        unet.requires_grad_(True)
    trainable = [p for p in unet.parameters() if p.requires_grad]
    base_prediction = _base_predictor(unet, config) if prior is not None and config.prior_target == "model" else None
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=1e-2)
    step = 0
    if start is not None:
        state = resume.load_checkpoint(start[1], unet=unet, optimizer=optimizer, method=config.method)
        step = state["step"]
        report(TrainProgress("resumed", step, config.steps, state.get("loss"), f"resumed from {start[1].name}"))
    unet, optimizer = accelerator.prepare(unet, optimizer)
    noise_scheduler = DDPMScheduler.from_config(components["scheduler"].config)
    v_prediction = noise_scheduler.config.prediction_type == "v_prediction"
    sidecar = config.sidecar(family)
    state = {"settings": _settings(config), "family": family}
    loss_value = None

    def save(at_step: int) -> None:
        if accelerator.is_main_process:
            resume.save_checkpoint(out, at_step, unet=accelerator.unwrap_model(unet), optimizer=optimizer,
                                   method=config.method, family=family, state={**state, "loss": loss_value},
                                   sidecar={**sidecar, "base": config.model})
            resume.prune(out, config.keep_checkpoints)
        accelerator.wait_for_everyone()

    def stopping() -> bool:
        asked = should_stop is not None and should_stop()
        if accelerator.num_processes > 1:  # every process must stop at the same step
            flag = accelerator.reduce(torch.tensor([float(asked)], device=device), reduction="max")
            asked = bool(flag.item())
        return asked

    while step < config.steps:
        if stopping():
            save(step)
            raise TrainingStopped(f"stopped at step {step}; run the same command again to continue")
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step * 9_973 + accelerator.process_index)
        batches = [(instance, instance_text, 1.0)] + ([(prior, class_text, config.prior_loss_weight)] if prior else [])
        loss = 0.0
        for latents_of, text, weight in batches:
            index = torch.randint(len(latents_of.mean), (config.batch_size,), generator=generator)
            latents = latents_of.sample(index, generator).to(device)
            noise = torch.randn(latents.shape, generator=generator).to(device)
            timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (config.batch_size,),
                                      generator=generator).to(device)
            noisy = noise_scheduler.add_noise(latents, noise, timesteps)
            target = noise_scheduler.get_velocity(latents, noise, timesteps) if v_prediction else noise
            hidden = text.hidden.expand(config.batch_size, -1, -1)
            added = ({k: v.expand(config.batch_size, -1) for k, v in text.added.items()} if text.added else None)
            if text is class_text and len(prior_texts) > 1:  # each class image with a prompt of its own
                picks = torch.randint(len(prior_texts), (config.batch_size,), generator=generator).tolist()
                hidden = torch.cat([prior_texts[k].hidden for k in picks])
                added = ({key: torch.cat([prior_texts[k].added[key] for k in picks]) for key in text.added}
                         if text.added else None)
            if text is class_text and base_prediction is not None:
                target = base_prediction(noisy, timesteps, hidden, added)
            with accelerator.autocast():
                prediction = unet(noisy, timesteps, hidden, added_cond_kwargs=added).sample
            loss = loss + weight * F.mse_loss(prediction.float(), target.float())
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(trainable, config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        loss_value = float(loss.detach())
        report(TrainProgress("training", step, config.steps, loss_value))
        if step % config.checkpoint_every == 0 or step == config.steps:
            save(step)

    result = _finish(config, accelerator, accelerator.unwrap_model(unet), components, family, sidecar, loss_value)
    accelerator.end_training()
    return result


def _ordinary_prompts(config: TrainConfig, family: str) -> tuple[str, ...]:
    """Prompts besides the class prompt whose answers the prior keeps: the family's
    (DreamBoothDefaults.prior_prompts), when the prior is trained toward the base model's own predictions, which
    need no images drawn for them. The class prompt alone keeps "a shape"; a LoRA still moves what the colour and
    position words draw unless their answers are kept too."""
    from pipelines.families import get_family

    make = get_family(family).dreambooth.prior_prompts
    if not config.prior_preservation or config.prior_target != "model" or make is None:
        return ()
    return tuple(make())


def _base_predictor(unet, config: TrainConfig):
    """The base model's prediction, for `prior_target="model"`: the LoRA switched off, or a frozen copy
    of the UNet taken before a full fine-tune starts."""
    import copy

    import torch

    frozen = None if config.method == "lora" else copy.deepcopy(unet).requires_grad_(False).eval()

    @torch.no_grad()
    def predict(noisy, timesteps, hidden, added):
        if frozen is not None:
            return frozen(noisy, timesteps, hidden, added_cond_kwargs=added).sample
        unet.disable_adapters()  # `unet` is the bare model, also when accelerate wraps it later
        try:
            return unet(noisy, timesteps, hidden, added_cond_kwargs=added).sample
        finally:
            unet.enable_adapters()

    return predict


def _finish(config: TrainConfig, accelerator, unet, components: dict, family: str, sidecar: dict,
            loss: float | None) -> TrainResult:
    """The result in `out`: a LoRA file or a complete diffusers folder, appearing in one step."""
    from pipelines.dreambooth.finalize import save_full_model, save_lora_model

    out = Path(config.out)
    if accelerator.is_main_process:
        if config.method == "lora":
            save_lora_model(unet, family, out, {**sidecar, "type": "lora", "base": config.model})
        else:
            save_full_model(unet, components, out, {**sidecar, "base": config.model})
    accelerator.wait_for_everyone()
    return TrainResult(out=str(out), method=config.method, steps=config.steps, loss=loss,
                       sidecar=read_sidecar(out))

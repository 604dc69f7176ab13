"""DreamBooth: teach a model a subject from 3-20 pictures; the result appears in every model/LoRA picker.

The run is saved in the models folder under the name given; Stop saves a checkpoint, and Train with the
same name continues from it. Progress shows the step and the loss as it goes.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import gradio as gr

from pipelines.dreambooth.config import PRIOR_TARGETS, TrainConfig, TrainingStopped
from pipelines.dreambooth.dataset import IMAGE_SUFFIXES
from pipelines.memory import free_memory, is_out_of_memory
from pipelines.requests import InvalidRequest
from studio.forms import as_float, as_int, as_text
from studio.results import progress_html
from studio.training_run import TrainingRun
from studio.widgets import model_dropdown, refresh_handler

_PRIOR_TARGET_LABELS = {"images": "their noise (DreamBooth)", "model": "the base model's prediction"}
PRIOR_TARGET_CHOICES = [(_PRIOR_TARGET_LABELS[name], name) for name in PRIOR_TARGETS]

TITLE = "DreamBooth"
UPLOADS_DIR = ".dreambooth_images"  # inside the models folder; the leading dot keeps the models scan out
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _models_dir(registry) -> Path:
    folder = getattr(registry, "models_dir", None)
    if folder is None:
        raise gr.Error("This studio runs without a models folder, so there is nowhere to save a trained model.")
    return Path(folder)


def stage_images(files, folder: Path) -> Path:
    """Copy the uploaded pictures into `folder` (replacing what an earlier upload put there)."""
    paths = [Path(f if isinstance(f, str) else getattr(f, "name", "")) for f in (files or [])]
    paths = [p for p in paths if p.suffix.lower() in IMAGE_SUFFIXES]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for index, path in enumerate(paths):
        shutil.copyfile(path, folder / f"{index:02d}{path.suffix.lower()}")
    return folder


def make_config(registry, *, model, files, instance_prompt, class_prompt, prior, num_class_images, method, steps,
                learning_rate, resolution, seed, checkpoint_every, name, batch_size, lora_rank,
                prior_target="images") -> TrainConfig:
    """Widget values -> a validated TrainConfig (InvalidRequest names the field)."""
    name = as_text("name", name).strip()
    if not _NAME.match(name):
        raise InvalidRequest("name", "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    models = _models_dir(registry)
    registry.model_info(as_text("model", model))  # an unknown base fails here, by name
    rate = as_float("learning_rate", learning_rate) if learning_rate not in (None, "", 0) else None
    size = as_int("resolution", resolution) if resolution not in (None, "", 0) else None
    images = stage_images(files, models / UPLOADS_DIR / name)
    config = TrainConfig(model=model, images=str(images), instance_prompt=as_text("instance_prompt", instance_prompt),
                         out=str(models / name), class_prompt=(class_prompt or "").strip() or None,
                         prior_preservation=bool(prior), num_class_images=as_int("num_class_images", num_class_images),
                         prior_target=as_text("prior_target", prior_target),
                         method=method, steps=as_int("steps", steps), learning_rate=rate, resolution=size,
                         seed=as_int("seed", seed), checkpoint_every=as_int("checkpoint_every", checkpoint_every),
                         batch_size=as_int("batch_size", batch_size), lora_rank=as_int("lora_rank", lora_rank))
    config.for_family(registry.model_info(model).family).validate()
    return config


def _status(update) -> str:
    loss = f" - loss {update.loss:.4f}" if update.loss is not None else ""
    return progress_html(update.step, update.total, f"{update.phase} {update.step}/{update.total}{loss}")


def train_handler(registry, **values):
    """The Train button: progress HTML, the loss table and (at the end) the result, as the run goes."""
    try:
        config = make_config(registry, **values)
    except InvalidRequest as error:
        raise gr.Error(str(error), title="Invalid setting") from None
    losses: list[tuple[int, float]] = []
    yield progress_html(0, config.steps, "loading the base model"), _loss_table(losses), gr.skip()
    out_of_memory = False
    try:
        with TrainingRun(registry, config) as run:
            for update in run.updates():
                if update is None:
                    continue
                if update.phase == "training" and update.loss is not None:
                    losses.append((update.step, update.loss))
                yield _status(update), _loss_table(losses), gr.skip()
    except TrainingStopped as stopped:
        raise gr.Error(str(stopped), title="Stopped") from None
    except InvalidRequest as error:
        raise gr.Error(str(error), title="Invalid setting") from None
    except ValueError as error:  # e.g. the folder holds another run's checkpoints
        raise gr.Error(str(error).splitlines()[0], title="Cannot train") from None
    except RuntimeError as error:
        if not is_out_of_memory(error):
            raise
        out_of_memory = True
    if out_of_memory:  # out here the failed step's tensors are unreferenced, so freeing gets them back
        free_memory(registry.device)
        raise gr.Error("training ran out of memory: lower batch_size, then resolution or lora_rank (the last "
                       "checkpoint is kept; Train with the same name continues)", title="Out of memory")
    registry.refresh()
    result = run.result
    where = "LoRA" if result.method == "lora" else "model"
    done = progress_html(config.steps, config.steps, f"done - a {where} named {Path(result.out).name}")
    yield done, _loss_table(losses), {"out": result.out, "kind": where, "final_loss": result.loss,
                                      "trigger_words": result.sidecar.get("trigger_words", [])}


def _loss_table(losses: list[tuple[int, float]]):
    import pandas as pd

    return pd.DataFrame(losses, columns=["step", "loss"])


def build(registry, shared) -> None:
    defaults = TrainConfig(model="", images="", instance_prompt="", out="")  # as the CLI's flags have them
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            model = model_dropdown(registry, shared, info="the base model to teach")
            files = gr.File(label="Pictures of the subject (3 to 20)", file_count="multiple", file_types=["image"],
                            type="filepath")
            instance_prompt = gr.Textbox(label="Instance prompt", value="a photo of sks dog",
                                         info="a rare word (sks) names the subject; it becomes the trigger words")
            with gr.Row():
                prior = gr.Checkbox(label="Prior preservation", value=False,
                                    info="keep the class itself looking as before")
                class_prompt = gr.Textbox(label="Class prompt", placeholder="a photo of a dog")
                num_class_images = gr.Number(label="Class images", value=defaults.num_class_images, precision=0,
                                             minimum=1)
            prior_target = gr.Radio(PRIOR_TARGET_CHOICES, value=defaults.prior_target,
                                    label="Class images are trained toward",
                                    info="the model's prediction keeps its answers: use it for the bundled model")
            method = gr.Radio([("LoRA (small, fast)", "lora"), ("Full fine-tune", "full")], value="lora",
                              label="Method")
            with gr.Row():
                steps = gr.Number(label="Steps", value=defaults.steps, precision=0, minimum=1)
                learning_rate = gr.Number(label="Learning rate (0: default)", value=0)
                resolution = gr.Number(label="Resolution (0: the model's own)", value=0, precision=0)
            with gr.Row():
                batch_size = gr.Number(label="Batch size", value=defaults.batch_size, precision=0, minimum=1,
                                       info="pictures per step: steadier, and slower per step")
                lora_rank = gr.Number(label="LoRA rank", value=defaults.lora_rank, precision=0, minimum=1,
                                      info="room to learn (LoRA only)")
            with gr.Row():
                seed = gr.Number(label="Seed", value=defaults.seed, precision=0, minimum=0)
                checkpoint_every = gr.Number(label="Checkpoint every", value=defaults.checkpoint_every, precision=0,
                                             minimum=1)
                name = gr.Textbox(label="Name", value="my-subject", info="saved in the models folder")
            with gr.Row():
                train = gr.Button("Train", variant="primary")
                stop = gr.Button("Stop (keeps a checkpoint)", variant="stop")
        with gr.Column(scale=1):
            status = gr.HTML(progress_html(0, 1, "idle"))
            losses = gr.LinePlot(_loss_table([]), x="step", y="loss", title="Training loss", height=280)
            result = gr.JSON(label="Result")
    inputs = dict(model=model, files=files, instance_prompt=instance_prompt, class_prompt=class_prompt, prior=prior,
                  num_class_images=num_class_images, method=method, steps=steps, learning_rate=learning_rate,
                  resolution=resolution, seed=seed, checkpoint_every=checkpoint_every, name=name,
                  batch_size=batch_size, lora_rank=lora_rank, prior_target=prior_target)

    def run_training(**values):
        yield from train_handler(registry, **values)

    event = train.click(run_training, inputs_kwargs=inputs, outputs=[status, losses, result],
                        api_visibility="private", **shared.generation_options())
    event.then(refresh_handler(registry, shared), outputs=shared.pickers(), api_visibility="private")
    stop.click(None, cancels=[event], api_visibility="private")

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
from pipelines.dreambooth.dataset import IMAGE_SUFFIXES, MAX_INSTANCE_IMAGES, MIN_INSTANCE_IMAGES
from pipelines.dreambooth.resume import checkpoints
from pipelines.memory import free_memory, is_out_of_memory
from pipelines.requests import InvalidRequest
from studio.forms import as_float, as_int, as_text
from studio.results import progress_html
from studio.runner import DeviceBusy
from studio.send_to import Receiver, register_receiver
from studio.sessions import run_key
from studio.training_run import TrainingRun
from studio.widgets import model_dropdown, refresh_handler, run_controls, user_error

_PRIOR_TARGET_LABELS = {"images": "their noise (DreamBooth)", "model": "the base model's prediction"}
PRIOR_TARGET_CHOICES = [(_PRIOR_TARGET_LABELS[name], name) for name in PRIOR_TARGETS]

TITLE = "DreamBooth"
TAB = "dreambooth"
UPLOADS_DIR = ".dreambooth_images"  # inside the models folder; the leading dot keeps the models scan out
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _models_dir(registry) -> Path:
    folder = getattr(registry, "models_dir", None)
    if folder is None:
        raise user_error("This studio runs without a models folder, so there is nowhere to save a trained model.",
                         title="Cannot train")
    return Path(folder)


def picture_files(files) -> list[Path]:
    """The uploaded pictures; InvalidRequest("files", ...) names what is missing or not a picture."""
    paths = [Path(f if isinstance(f, str) else getattr(f, "name", "")) for f in (files or [])]
    others = [p.name for p in paths if p.suffix.lower() not in IMAGE_SUFFIXES]
    if others:
        raise InvalidRequest("files", f"not a picture ({', '.join(IMAGE_SUFFIXES)}): {', '.join(others)}")
    if not MIN_INSTANCE_IMAGES <= len(paths) <= MAX_INSTANCE_IMAGES:
        raise InvalidRequest("files", f"add {MIN_INSTANCE_IMAGES} to {MAX_INSTANCE_IMAGES} pictures of the subject "
                                      f"(PNG, JPEG, WebP or BMP); there are {len(paths)}")
    return paths


def stage_images(files, folder: Path) -> Path:
    """Copy the uploaded pictures into `folder` (replacing what an earlier upload put there)."""
    paths = picture_files(files)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for index, path in enumerate(paths):
        shutil.copyfile(path, folder / f"{index:02d}{path.suffix.lower()}")
    return folder


# The fields that start at the chosen model family's DreamBooth defaults (pipelines/families.py) and follow
# the model picker; a number left blank is the family's default too.
FAMILY_FIELDS = ("prior", "class_prompt", "num_class_images", "prior_target", "steps", "batch_size", "lora_rank")


def family_defaults(family_key: str) -> dict:
    """A family's DreamBooth defaults by the tab's field names."""
    from pipelines.families import get_family

    defaults = get_family(family_key).dreambooth
    return dict(prior=defaults.prior_preservation, class_prompt=defaults.class_prompt or "",
                num_class_images=defaults.num_class_images, prior_target=defaults.prior_target,
                steps=defaults.steps, batch_size=defaults.batch_size, lora_rank=defaults.lora_rank)


def model_defaults(registry, model) -> dict | None:
    """The DreamBooth defaults of `model`'s family; None while the model is not known (a half-typed path)."""
    try:
        return family_defaults(registry.model_info(as_text("model", model)).family)
    except InvalidRequest:
        return None


def _number_or_default(name: str, value) -> int | None:
    return None if value is None or (isinstance(value, str) and not value.strip()) else as_int(name, value)


def make_config(registry, *, model, files, instance_prompt, class_prompt, prior, num_class_images, method, steps,
                learning_rate, resolution, seed, checkpoint_every, name, batch_size, lora_rank,
                prior_target=None) -> TrainConfig:
    """Widget values -> a validated TrainConfig with the model family's defaults filled in for what was left
    blank (InvalidRequest names the field)."""
    name = as_text("name", name).strip()
    if not _NAME.match(name):
        raise InvalidRequest("name", "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    models = _models_dir(registry)
    family = registry.model_info(as_text("model", model)).family  # an unknown base fails here, by name
    rate = as_float("learning_rate", learning_rate) if learning_rate not in (None, "", 0) else None
    size = as_int("resolution", resolution) if resolution not in (None, "", 0) else None
    picture_files(files)  # before anything is copied or loaded
    images = stage_images(files, models / UPLOADS_DIR / name)
    config = TrainConfig(model=model, images=str(images), instance_prompt=as_text("instance_prompt", instance_prompt),
                         out=str(models / name), class_prompt=(class_prompt or "").strip() or None,
                         prior_preservation=None if prior is None else bool(prior),
                         num_class_images=_number_or_default("num_class_images", num_class_images),
                         prior_target=None if prior_target is None else as_text("prior_target", prior_target),
                         method=method, steps=_number_or_default("steps", steps), learning_rate=rate,
                         resolution=size, seed=as_int("seed", seed),
                         checkpoint_every=as_int("checkpoint_every", checkpoint_every),
                         batch_size=_number_or_default("batch_size", batch_size),
                         lora_rank=_number_or_default("lora_rank", lora_rank)).for_family(family)
    config.validate()
    return config


def _status(update) -> str:
    loss = f" - loss {update.loss:.4f}" if update.loss is not None else ""
    return progress_html(update.step, update.total, f"{update.phase} {update.step}/{update.total}{loss}")


def stopped_note(config: TrainConfig) -> str:
    saved = checkpoints(config.out)
    if not saved:
        return "Stopped before the first step; nothing was saved. Train again to start."
    step, folder = saved[-1]
    return (f"Stopped at step {step} of {config.steps}: {folder.name} is saved in {Path(config.out).name}. "
            "Press Train with the same name to continue from it.")


def train_handler(registry, shared=None, key=None, **values):
    """The Train button: progress HTML, the loss table and (at the end) the result, as the run goes.

    Stop (studio.widgets.run_controls) asks the trainer to stop: it finishes its step, saves a checkpoint and
    ends, and the status says where it stopped. A closed browser tab leaves the training running to its end.
    """
    def failed(message: str):
        return progress_html(0, 1, f"Not trained: {message}"), gr.skip(), gr.skip()

    try:
        config = make_config(registry, **values)
    except InvalidRequest as error:
        yield failed(str(error))
        raise user_error(str(error)) from None
    losses: list[tuple[int, float]] = []
    yield progress_html(0, config.steps, "loading the base model"), _loss_table(losses), gr.skip()
    run = TrainingRun(registry, config, slots=shared.device_slots if shared is not None else None)
    if shared is not None and not shared.runs.start(key, run):
        yield progress_html(0, 1, "Stopped before it started"), gr.skip(), gr.skip()
        return
    out_of_memory = False
    try:
        with run:
            for update in run.updates():
                if isinstance(update, DeviceBusy):
                    busy_device = progress_html(0, 1, "Waiting for the device: an earlier run is finishing…")
                    yield busy_device, gr.skip(), gr.skip()
                    continue
                if update is not None and update.phase == "training" and update.loss is not None:
                    losses.append((update.step, update.loss))
                if run.stopping:  # said by the run itself, between steps too (a step can take long)
                    done = losses[-1][0] if losses else 0
                    note = f"stopping: finishing step {done + 1} and saving a checkpoint…"
                    yield progress_html(done, config.steps, note), _loss_table(losses), gr.skip()
                elif update is not None:
                    yield _status(update), _loss_table(losses), gr.skip()
    except TrainingStopped:
        note = stopped_note(config)
        gr.Info(note)
        yield progress_html(0, 1, note), _loss_table(losses), gr.skip()
        return
    except InvalidRequest as error:
        yield failed(str(error))
        raise user_error(str(error)) from None
    except ValueError as error:  # e.g. the folder holds another run's checkpoints
        yield failed(str(error).splitlines()[0])
        raise user_error(str(error).splitlines()[0], title="Cannot train") from None
    except RuntimeError as error:
        if not is_out_of_memory(error):
            raise
        out_of_memory = True
    if out_of_memory:  # out here the failed step's tensors are unreferenced, so freeing gets them back
        free_memory(registry.device)
        message = ("training ran out of memory: lower batch_size, then resolution or lora_rank (the last "
                   "checkpoint is kept; Train with the same name continues)")
        yield failed(message)
        raise user_error(message, title="Out of memory")
    registry.refresh()
    result = run.result
    where = "LoRA" if result.method == "lora" else "model"
    done = progress_html(config.steps, config.steps, f"done - a {where} named {Path(result.out).name}")
    yield done, _loss_table(losses), {"out": result.out, "kind": where, "final_loss": result.loss,
                                      "trigger_words": result.sidecar.get("trigger_words", [])}


def _loss_table(losses: list[tuple[int, float]]):
    import pandas as pd

    # Typed columns: from an empty table the plot would otherwise take the loss for categories (a y axis of
    # labels in the order they came, not a scale).
    return pd.DataFrame(losses, columns=["step", "loss"]).astype({"step": "int64", "loss": "float64"})


def build(registry, shared) -> None:
    # The number boxes hand over what was typed (no precision rounding 3.5 to 4, no bounds that Gradio would
    # refuse without naming the field): make_config and TrainConfig.validate name the field and its range.
    # The fields in FAMILY_FIELDS start at the default model's family's DreamBooth defaults, as the CLI's
    # flags do, and are set to the new family's when another model is picked.
    defaults = TrainConfig(model="", images="", instance_prompt="", out="")
    shown = model_defaults(registry, shared.default_model) or family_defaults("sd1")
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            model = model_dropdown(registry, shared, info="the base model to teach")
            files = gr.File(label="Pictures of the subject (3 to 20)", file_count="multiple", file_types=["image"],
                            type="filepath")
            instance_prompt = gr.Textbox(label="Instance prompt", value="a photo of sks dog",
                                         info="a rare word (sks) names the subject; it becomes the trigger words")
            with gr.Row():
                prior = gr.Checkbox(label="Prior preservation", value=shown["prior"],
                                    info="keep the class itself looking as before")
                class_prompt = gr.Textbox(label="Class prompt", placeholder="a photo of a dog",
                                          value=shown["class_prompt"])
                num_class_images = gr.Number(step=1, label="Class images", value=shown["num_class_images"])
            prior_target = gr.Radio(PRIOR_TARGET_CHOICES, value=shown["prior_target"],
                                    label="Class images are trained toward",
                                    info="the model's prediction keeps its answers: use it for the bundled model")
            method = gr.Radio([("LoRA (small, fast)", "lora"), ("Full fine-tune", "full")], value="lora",
                              label="Method")
            with gr.Row():
                steps = gr.Number(step=1, label="Steps", value=shown["steps"])
                learning_rate = gr.Number(label="Learning rate (0: default)", value=0)
                resolution = gr.Number(step=1, label="Resolution (0: the model's own)", value=0)
            with gr.Row():
                batch_size = gr.Number(step=1, label="Batch size", value=shown["batch_size"],
                                       info="pictures per step: steadier, and slower per step")
                lora_rank = gr.Number(step=1, label="LoRA rank", value=shown["lora_rank"],
                                      info="room to learn (LoRA only)")
            with gr.Row():
                seed = gr.Number(step=1, label="Seed", value=defaults.seed)
                checkpoint_every = gr.Number(step=1, label="Checkpoint every", value=defaults.checkpoint_every)
                name = gr.Textbox(label="Name", value="my-subject", info="saved in the models folder")
            with gr.Row():
                train = gr.Button("Train", variant="primary", elem_classes="studio-generate")
                stop = gr.Button("Stop (keeps a checkpoint)", variant="stop", elem_classes="studio-stop")
        with gr.Column(scale=1):
            status = gr.HTML(progress_html(0, 1, "idle"))
            losses = gr.LinePlot(_loss_table([]), x="step", y="loss", title="Training loss", height=280)
            result = gr.JSON(label="Result")
    inputs = dict(model=model, files=files, instance_prompt=instance_prompt, class_prompt=class_prompt, prior=prior,
                  num_class_images=num_class_images, method=method, steps=steps, learning_rate=learning_rate,
                  resolution=resolution, seed=seed, checkpoint_every=checkpoint_every, name=name,
                  batch_size=batch_size, lora_rank=lora_rank, prior_target=prior_target)
    prepare, ready, busy = run_controls(shared, TAB, run_button=train, stop_button=stop, progress=status,
                                        run_label="Train")
    followed = [inputs[name] for name in FAMILY_FIELDS]

    def on_model(chosen):
        values = model_defaults(registry, chosen)
        if values is None:  # not a model (yet): keep what is shown
            return [gr.skip()] * len(followed)
        return [values[name] for name in FAMILY_FIELDS]

    # .input: picked by the user (a refresh of the pickers keeps the fields as they are)
    model.input(on_model, inputs=model, outputs=followed, queue=False, api_visibility="private")

    def run_training(request: gr.Request = None, **values):
        yield gr.skip(), gr.skip(), gr.skip(), busy()
        try:
            for shown in train_handler(registry, shared, run_key(request, TAB), **values):
                yield (*shown, gr.skip())
        except Exception:
            yield gr.skip(), gr.skip(), gr.skip(), ready()
            raise
        yield gr.skip(), gr.skip(), gr.skip(), ready()

    event = train.click(prepare, outputs=[train, status], queue=False, api_visibility="private").then(
        run_training, inputs_kwargs=inputs, outputs=[status, losses, result, train], api_visibility="private",
        **shared.generation_options())
    event.then(refresh_handler(registry, shared), outputs=shared.pickers(), api_visibility="private")

    def add_picture(payload: dict, current) -> dict:
        """A sent picture joins the training pictures."""
        current = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in (current or [])]
        image = payload.get("image")
        if isinstance(image, str):
            return {files: [*current, image]}
        if image is not None:  # pixels only (not saved): write them where Gradio keeps uploads
            import tempfile

            handle, path = tempfile.mkstemp(suffix=".png", prefix="sent-")
            with open(handle, "wb") as out:
                image.save(out, format="PNG")
            return {files: [*current, path]}
        return {}

    register_receiver(shared, Receiver(TAB, TITLE, [files], add_picture, inputs=[files]))

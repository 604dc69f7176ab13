"""The launched studio answers its API through gradio_client, and Stop really stops a run."""
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from live_form import submit_live
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from browser_support import PacedRegistry, free_port
from pipelines.grid import labelled_grid
from pipelines.requests import GenerationCancelled, GenerationRequest
from studio.runner import GenerationRun
from studio.ui import TABS, build_demo, launch_options

REPO = Path(__file__).resolve().parent.parent
PROMPT = "a large red circle in the top left on a blue background"
LONG_RUN_STEPS = 150  # the longest run the shapes model allows: Stop must end it well before the end


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    registry = PacedRegistry(models_dir=tmp_path_factory.mktemp("models"),
                             outputs_dir=tmp_path_factory.mktemp("outputs"), device="cpu", dtype="float32")
    demo = build_demo(registry)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(),
                            quiet=True, **launch_options(registry))
    client = Client(url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))
    yield registry, client
    demo.close()


def test_txt2img_returns_pngs_of_the_requested_size_with_their_seeds(studio):
    _, client = studio
    images, info = client.predict(prompt=PROMPT, steps=4, width=64, height=96, seed=11, num_images=2,
                                  api_name="/txt2img")
    assert len(images) == 2
    for entry in images:
        with Image.open(entry["image"]) as image:
            assert image.format == "PNG" and image.size == (64, 96)
    assert info["seeds"] == [11, 12]
    assert [caption["caption"] for caption in images] == ["seed 11", "seed 12"]
    assert all(Path(path).is_file() for path in info["paths"])  # also saved to the outputs folder


def test_png_info_returns_the_prompt_put_in(studio):
    _, client = studio
    images, _ = client.predict(prompt=PROMPT, negative_prompt="blurry", scheduler="DDIM", steps=3, seed=5,
                               api_name="/txt2img")
    parameters, settings = client.predict(image=handle_file(images[0]["image"]), api_name="/png_info")
    assert parameters.splitlines()[0] == PROMPT
    assert "Sampler: DDIM" in parameters and "Seed: 5" in parameters
    assert settings["prompt"] == PROMPT and settings["negative_prompt"] == "blurry"
    assert (settings["scheduler"], settings["steps"], settings["seed"]) == ("DDIM", 3, 5)


def test_txt2img_takes_clip_skip_last_and_writes_it_as_a1111_does(studio):
    _, client = studio
    _, info = client.predict(prompt=PROMPT + " BREAK (white:1.2)", steps=2, width=64, height=64, seed=2,
                             clip_skip=2, api_name="/txt2img")
    assert info["request"]["clip_skip"] == 2 and "Clip skip: 2" in info["parameters"][0]
    _, info = client.predict(PROMPT, "", "shapes", "Euler a", 2, 7.0, 64, 64, 2, 1, [], api_name="/txt2img")
    assert info["request"]["clip_skip"] == 1 and "Clip skip" not in info["parameters"][0]  # the default


def test_png_info_reads_an_automatic1111_png(studio, tmp_path):
    _, client = studio
    text = ("a watercolor fox in a birch forest\nNegative prompt: blurry, lowres\n"
            "Steps: 30, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234567890, "
            "Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.10.1")
    metadata = PngInfo()
    metadata.add_text("parameters", text)
    path = tmp_path / "a1111.png"
    Image.new("RGB", (64, 64), "white").save(path, pnginfo=metadata)
    parameters, settings = client.predict(image=handle_file(str(path)), api_name="/png_info")
    assert parameters == text
    assert settings["prompt"] == "a watercolor fox in a birch forest"
    assert settings["negative_prompt"] == "blurry, lowres"
    assert (settings["scheduler"], settings["schedule_type"]) == ("DPM++ 2M", "Karras")  # A1111's names
    assert (settings["steps"], settings["guidance_scale"]) == (30, 7.0)
    assert (settings["width"], settings["height"], settings["seed"]) == (512, 768, 1234567890)


def test_png_without_parameters_says_so(studio, tmp_path):
    _, client = studio
    path = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(path)
    parameters, settings = client.predict(image=handle_file(str(path)), api_name="/png_info")
    assert parameters == "No generation parameters found in this image." and settings == {}


@pytest.mark.parametrize("settings, message", [
    ({"width": 100}, "width: must be a multiple of 8 from 64 to 256, got 100"),
    ({"scheduler": "Bogus"}, "scheduler: unknown sampler 'Bogus'"),
    ({"model": "sd15", "width": 512, "height": 512}, "model: the weights of 'sd15'"),
])
def test_bad_request_is_an_error_with_the_engines_message(studio, settings, message):
    _, client = studio
    with pytest.raises(AppError, match=re.escape(message)):
        client.predict(prompt=PROMPT, **settings, api_name="/txt2img")


def test_readme_gradio_client_snippet_works(studio):
    registry, client = studio
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    snippet = next(block for block in re.findall(r"```python\n(.*?)```", readme, re.S) if "gradio_client" in block)
    assert 'Client("http://127.0.0.1:7860/")' in snippet
    namespace = {}
    exec(snippet.replace("http://127.0.0.1:7860/", client.src), namespace)
    assert namespace["info"]["seeds"] == [42, 43]
    assert namespace["settings"]["prompt"] == "a large red circle in the top left on a blue background"
    assert namespace["parameters"].startswith(namespace["settings"]["prompt"])


def test_txt2img_takes_loras_by_key_or_path_with_weights(studio):
    from dreambooth_support import shapes_lora_file

    registry, client = studio
    lora = shapes_lora_file(registry.models_dir / "ink.safetensors", seed=6)  # no sidecar, as downloaded
    registry.refresh()
    common = dict(prompt=PROMPT, steps=3, width=64, height=64, seed=21, api_name="/txt2img")
    plain, plain_info = client.predict(**common)
    by_key, key_info = client.predict(**common, loras=["ink:0.8"])
    by_path, path_info = client.predict(**common, loras=[str(lora)])
    assert plain_info["request"]["loras"] == []
    assert key_info["request"]["loras"] == [["ink", 0.8]] and "Loras: " in key_info["parameters"][0]
    assert path_info["request"]["loras"] == [[str(lora), 1.0]]

    def pixels(images):
        with Image.open(images[0]["image"]) as image:
            return np.asarray(image.convert("RGB"), dtype=np.int16)

    assert np.abs(pixels(by_key) - pixels(plain)).max() > 8  # same seed: the LoRA made the difference
    assert np.abs(pixels(by_path) - pixels(by_key)).max() > 0  # and its weight counts
    with pytest.raises(AppError, match=re.escape("loras: unknown LoRA 'nope'")):
        client.predict(**common, loras=["nope"])
    with pytest.raises(AppError, match="loras: must be from -4 to 4, got 9"):
        client.predict(**common, loras=["ink:9"])


def test_refresh_updates_every_model_and_lora_picker(studio):
    from dreambooth_support import shapes_lora_file

    registry, _ = studio
    demo = build_demo(registry)
    blocks = list(demo.blocks.values())
    [button] = [b for b in blocks if isinstance(b, gr.Button) and "Refresh models" in str(b.value)]
    lora_pickers = [b for b in blocks if isinstance(b, gr.Dropdown) and b.label == "LoRAs"]
    model_pickers = [b for b in blocks if isinstance(b, gr.Dropdown) and b.label == "Model"]
    assert len(lora_pickers) == 4  # Text to Image, Image to Image, Inpaint and Adapters
    refreshes = [fn for fn in demo.fns.values() if fn.name == "refresh_pickers"]
    # The button, and the DreamBooth tab once a training run has finished.
    assert sorted(event for fn in refreshes for _, event in fn.targets) == ["click", "then"]
    assert (button._id, "click") in [target for fn in refreshes for target in fn.targets]
    for fn in refreshes:
        assert {b._id for b in lora_pickers + model_pickers} == {b._id for b in fn.outputs}
    shapes_lora_file(registry.models_dir / "fresh.safetensors", seed=7)
    updates = refreshes[0].fn()
    for picker in lora_pickers:
        assert "fresh" in [value for _, value in updates[picker].choices]
    for picker in model_pickers:
        assert "fresh" not in [value for _, value in updates[picker].choices]


def test_live_txt2img_streams_progress_then_the_images(studio):
    _, client = studio
    # The UI's own endpoint takes every widget of the form: the LoRA picker (none, weight 1), then batch count,
    # the variation seed and strength, the schedule type and clip skip.
    job = submit_live(client, steps=6, width=128, height=128, seed=3, num_images=1)
    gallery, info, progress = job.result(timeout=120)
    updates = job.outputs()
    step_labels = [update[0][0]["caption"] for update in updates[:-1] if isinstance(update[0], list)]
    assert step_labels == [f"step {k} / 6" for k in range(1, 7)]  # a preview after every step
    assert "Done: 1 image(s)" in progress and 'aria-valuenow="100"' in progress
    assert gallery[0]["caption"] == "seed 3" and "Seed: 3" in info


def test_live_txt2img_applies_the_lora_picker(studio):
    from dreambooth_support import shapes_lora_file

    registry, client = studio
    shapes_lora_file(registry.models_dir / "picked.safetensors", seed=8)
    registry.refresh()
    job = submit_live(client, steps=2, width=64, height=64, seed=3, num_images=1, loras=["picked"], lora_weight=0.5)
    _, info, _ = job.result(timeout=120)
    assert 'Loras: "picked:0.5"' in info


def wait_for_first_preview(job) -> None:
    """Until the run is under way in its worker thread."""
    for update in job:
        if isinstance(update[0], list) and update[0] and update[0][0]["caption"].startswith("step"):
            return


def test_stop_ends_the_run_in_the_worker(studio):
    registry, client = studio
    registry.run_ended.clear()
    ended_before = len(registry.endings)
    job = submit_live(client, steps=LONG_RUN_STEPS, width=128, height=128, seed=1, num_images=1)
    wait_for_first_preview(job)
    client.predict(api_name="/txt2img_stop")  # the Stop button: this client's (session's) run only
    assert registry.run_ended.wait(timeout=120), "the worker never ended"
    outcome, steps_done = registry.endings[ended_before]
    assert outcome == "cancelled"
    assert 1 <= steps_done < LONG_RUN_STEPS
    _, _, progress, *_ = job.result(timeout=60)  # the handler itself ends, saying so
    assert "Stopped" in progress


def test_a_closed_connection_lets_the_run_finish_and_save(studio):
    """Closing the browser tab (here: the client cancelling its job) is not Stop: the run ends and saves."""
    registry, client = studio
    registry.run_ended.clear()
    ended_before = len(registry.endings)
    saved_before = set(registry.outputs.root.rglob("*.png"))
    job = submit_live(client, steps=40, width=64, height=64, seed=77, num_images=2)
    wait_for_first_preview(job)
    job.cancel()
    assert registry.run_ended.wait(timeout=120), "the worker never ended"
    assert registry.endings[ended_before] == ("finished", 80)
    new = {path.name for path in set(registry.outputs.root.rglob("*.png")) - saved_before}
    assert {name.split("-", 1)[1] for name in new} == {"77.png", "78.png"}


def test_compare_builds_a_labelled_grid_with_one_seed(studio):
    _, client = studio
    grid_path, info, progress = client.predict(PROMPT, "", "shapes", ["Euler a", "DDIM"], 20, 7.0, 7,
                                               "Steps", "2, 3", "Automatic", api_name="/compare")
    with Image.open(grid_path) as grid:
        # two rows (steps) of 128px cells under a label row, two columns (samplers) beside a label column
        assert grid.width > 2 * 128 and grid.height > 2 * 128
    assert "Seed: 7" in info and "Done: 4 images, seed 7" in progress


def test_stop_of_the_compare_tab_ends_the_cell_being_made(studio):
    """What Stop does to the Compare tab: the cell being made ends early, and the handler says so."""
    registry, _ = studio
    demo = build_demo(registry)
    [compare] = [fn for fn in demo.fns.values() if fn.api_name == "compare"]
    [stop] = [fn for fn in demo.fns.values() if fn.api_name == "compare_stop"]
    registry.run_ended.clear()
    ended_before = len(registry.endings)
    handler = compare.fn(prompt=PROMPT, negative_prompt="", model="shapes", schedulers=["Euler a", "DDIM"],
                         steps=LONG_RUN_STEPS, guidance_scale=7.0, seed=1, axis="Samplers only", axis_values="")
    for update in handler:
        if any("step 1" in str(value) for value in update.values()):
            break
    stop.fn(None)  # no gr.Request: the handler, called directly, is filed under the empty session too
    last = list(handler)[-1]
    assert registry.run_ended.wait(timeout=120), "the worker never ended"
    assert registry.endings[ended_before:] == [("cancelled", registry.endings[ended_before][1])]
    assert 1 <= registry.endings[ended_before][1] < LONG_RUN_STEPS
    assert any("Stopped: 0 of 2 images made" in str(value) for value in last.values())


def test_app_py_starts_offline_on_the_bundled_model(tmp_path):
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    app = subprocess.Popen([sys.executable, str(REPO / "app.py"), "--port", str(port), "--models-dir",
                            str(tmp_path / "models"), "--outputs-dir", str(tmp_path / "outputs")],
                           cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in app.stdout:  # Gradio prints the URL once the server answers
            if f"http://127.0.0.1:{port}" in line:
                break
        assert app.poll() is None, "app.py exited instead of serving"
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(tmp_path))
        images, info = client.predict(prompt=PROMPT, steps=2, seed=3, api_name="/txt2img")
        assert info["request"]["model"] == "shapes" and Path(info["paths"][0]).parent.parent == tmp_path / "outputs"
    finally:
        app.terminate()
        app.wait(timeout=60)


def test_app_py_refuses_a_bad_flag_in_one_line():
    run = subprocess.run([sys.executable, str(REPO / "app.py"), "--auth", "no-colon"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.strip().splitlines()[-1] == "app.py: error: --auth: write USER:PASS"


def test_generation_events_share_one_concurrency_limit(studio):
    registry, _ = studio
    demo = build_demo(registry, concurrency_limit=2)
    generating = [fn for fn in demo.fns.values() if fn.api_name in ("txt2img", "txt2img_live", "compare")]
    assert len(generating) == 3
    assert {(fn.concurrency_id, fn.concurrency_limit) for fn in generating} == {("generation", 2)}
    assert {"Text to Image", "Compare Samplers", "PNG Info"} <= {tab.TITLE for tab in TABS}


def test_send_to_txt2img_fills_the_form_and_opens_its_tab(studio):
    registry, _ = studio
    demo = build_demo(registry)
    send = next(fn for fn in demo.fns.values() if fn.name == "send_to_txt2img")
    updates = send.fn({"image": None, "settings": {"prompt": PROMPT, "scheduler": "DDIM", "steps": 9, "seed": 5,
                                                   "model": "shapes"}})
    by_label = {getattr(component, "label", None): value for component, value in updates.items()}
    assert (by_label["Prompt"], by_label["Sampler (scheduler)"], by_label["Steps"], by_label["Seed"]) == \
        (PROMPT, "DDIM", 9, 5)
    tabs_update = next(value for component, value in updates.items() if component.__class__.__name__ == "Tabs")
    assert tabs_update.selected == "txt2img"


def test_the_steps_slider_names_the_chosen_samplers_suggestion(studio):
    registry, _ = studio
    demo = build_demo(registry)
    sliders = [b for b in demo.blocks.values() if isinstance(b, gr.Slider) and b.label == "Steps" and b.info]
    assert len(sliders) == 4 and all(s.info == "suggested for Euler a: 20" for s in sliders)  # and img2img, inpaint
    hints = [fn for fn in demo.fns.values() if fn.name == "show_suggested_steps"]
    assert {fn.outputs[0]._id for fn in hints} == {s._id for s in sliders}
    for fn in hints:
        assert fn.inputs[0].label == "Sampler (scheduler)"
        assert fn.fn("DPM2 a") == gr.update(info="suggested for DPM2 a: 30")  # the user's value stays
        assert fn.fn("DPM++ 3M SDE Karras")["info"] == "suggested for DPM++ 3M SDE Karras: 30"


def test_run_worker_stops_at_the_next_step_when_asked():
    """Leaving the `with` block (what closing a UI generator does) makes the engine's stop check true."""
    step_taken = threading.Event()
    steps_run = []

    def engine(request, on_step, should_stop, preview_every, **_options):
        for step in range(1, 1000):
            if should_stop():
                raise GenerationCancelled("stopped")
            steps_run.append(step)
            on_step(step)
            step_taken.wait(timeout=60)  # one step at a time: the next waits for the consumer
        return "finished"

    run = GenerationRun(engine, GenerationRequest(prompt="x"))
    with run:
        assert next(run.updates()) == 1
    step_taken.set()
    assert run.join(timeout=60)
    assert steps_run == [1] and run.result is None


def test_grid_places_each_cell_under_its_labels():
    red, blue = Image.new("RGB", (128, 128), "red"), Image.new("RGB", (128, 128), "blue")
    grid = labelled_grid([[red, blue], [blue, None]], ["steps 10", "steps 20"], ["DDIM", "UniPC"])
    width, height = grid.size
    right, bottom = width - 4 - 64, height - 4 - 64  # centres of the last column / row (4px gaps)
    assert grid.getpixel((right, bottom)) == (230, 230, 230)  # still pending: grey
    assert grid.getpixel((right, bottom - 132)) == (0, 0, 255)
    assert grid.getpixel((right - 132, bottom)) == (0, 0, 255)
    assert grid.getpixel((right - 132, bottom - 132)) == (255, 0, 0)
    assert grid.getpixel((4, height - 4)) == (255, 255, 255)  # the label margin is background
    with pytest.raises(ValueError):
        labelled_grid([[red]], ["one", "two"], ["a"])


def test_grid_columns_widen_for_long_labels():
    cell = Image.new("RGB", (64, 64), "red")
    short = labelled_grid([[cell, cell]], [""], ["a", "b"])
    long = labelled_grid([[cell, cell]], [""], ["DPM++ 3M SDE Exponential", "b"])
    assert short.width == 2 * (64 + 4) + 4
    assert long.width > short.width + 64

"""Strangers at the same time, through one in-process server (4 generations at once, 8 may wait).

Eight clients with different models, samplers, adapters, LoRAs and seeds get exactly the images a serial
run gives them; one user's Stop ends only that user's run; each sees only their own previews; an API client
sees its place in the queue; a full queue answers at once with a clear message, and the server goes on.
"""
from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from live_form import submit_live
import torch
from gradio_client import Client, handle_file
from gradio_client.utils import QueueError, Status
from PIL import Image

from pipelines import PipelineRegistry
from pipelines.requests import GenerationCancelled
from studio.ui import build_demo, launch_options

PROMPT = "a large red circle in the center on a white background"
CONCURRENCY, QUEUE_SIZE = 4, 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SharedRegistry(PipelineRegistry):
    """The real registry; a prompt starting with "hold" waits for `gate` first (a run that takes as long as the
    test wants, without burning the CPU), and every run's ending is recorded by prompt."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.endings: dict[str, tuple[str, int]] = {}
        self.ended = threading.Condition()
        self.saved: list[str] = []  # the paths of every finished run

    def generate(self, request, on_step=None, should_stop=None, preview_every=0, **options):
        if request.prompt.startswith("hold"):
            assert self.gate.wait(timeout=300), "the test never opened the gate"
        steps = []

        def count(update):
            steps.append(update.step)
            if on_step:
                on_step(update)

        try:
            result = super().generate(request, count, should_stop, preview_every, **options)
            outcome = "finished"
            with self.ended:
                self.saved.extend(result.paths)
            return result
        except GenerationCancelled:
            outcome = "cancelled"
            raise
        finally:
            with self.ended:
                self.endings[request.prompt] = (locals().get("outcome", "failed"), len(steps))
                self.ended.notify_all()

    def wait_for_ending(self, prompt: str, timeout: float = 300) -> tuple[str, int]:
        with self.ended:
            assert self.ended.wait_for(lambda: prompt in self.endings, timeout), f"{prompt!r} never ended"
            return self.endings[prompt]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A models folder with a second model (the shapes model with its UNet perturbed) and two LoRAs."""
    from dreambooth_support import load_shapes, pipeline_from, shapes_lora_file

    root = tmp_path_factory.mktemp("shared")
    components = load_shapes()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in components["unet"].parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.02 * parameter.std().nan_to_num())
    pipeline_from(components).save_pretrained(str(root / "models" / "variant"))
    shapes_lora_file(root / "models" / "ink.safetensors", seed=11)
    shapes_lora_file(root / "models" / "bold.safetensors", seed=12)
    return root


@pytest.fixture(scope="module")
def studio(folders):
    registry = SharedRegistry(models_dir=folders / "models", outputs_dir=folders / "outputs", device="cpu",
                              dtype="float32", allow_paths="models-dir")
    demo = build_demo(registry, concurrency_limit=CONCURRENCY, max_queue=QUEUE_SIZE)
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True,
                            **launch_options(registry))
    yield registry, url, folders
    registry.gate.set()
    demo.close()


def new_client(url, folders) -> Client:
    return Client(url, verbose=False, download_files=str(folders / "downloads"))


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def sketch(folders):
    from pipelines.shapes.render import shape_geometry, sketch_map
    from pipelines.shapes.world import Scene

    scene = Scene("square", "blue", "white", "large", "center")
    path = folders / "sketch.png"
    sketch_map(scene, shape_geometry(scene)).resize((64, 64)).save(path)
    return path


def eight_requests(sketch):
    """(api_name, settings): two models, six samplers, a LoRA on each model, two adapter runs, eight seeds."""
    common = dict(prompt=PROMPT, width=64, height=64)
    return [
        ("/txt2img", dict(common, model="shapes", scheduler="Euler a", steps=4, seed=1)),
        ("/txt2img", dict(common, model="variant", scheduler="DPM++ 2M Karras", steps=4, seed=2)),
        ("/txt2img", dict(common, model="shapes", scheduler="Heun", steps=3, seed=3, loras=["ink:0.8"])),
        ("/txt2img", dict(common, model="variant", scheduler="DDIM", steps=4, seed=4, loras=["bold"])),
        ("/txt2img", dict(common, model="shapes", scheduler="UniPC", steps=4, seed=5, num_images=2,
                          loras=["ink:0.5", "bold:0.5"])),
        ("/adapter", dict(common, model="shapes", scheduler="Euler", steps=4, seed=6, kind="sketch",
                          image=handle_file(str(sketch)), weight=0.9)),
        ("/adapter", dict(common, model="variant", scheduler="LMS", steps=4, seed=7, kind="sketch",
                          image=handle_file(str(sketch)), weight=0.6, loras=["ink"])),
        ("/txt2img", dict(common, model="variant", scheduler="Euler a", steps=5, seed=8)),
    ]


def run_one(client, api_name, settings):
    result = client.predict(**settings, api_name=api_name)
    images, info = result[0], result[-1]
    return info["request"], [pixels(entry["image"]) for entry in images]


def test_eight_clients_at_once_get_the_images_of_a_serial_run(studio, sketch):
    registry, url, folders = studio
    jobs = eight_requests(sketch)
    serial_client = new_client(url, folders)
    serial = [run_one(serial_client, api_name, settings) for api_name, settings in jobs]
    clients = [new_client(url, folders) for _ in jobs]
    start = threading.Barrier(len(jobs))

    def together(index):
        start.wait()
        return run_one(clients[index], *jobs[index])

    with ThreadPoolExecutor(len(jobs)) as pool:
        parallel = list(pool.map(together, range(len(jobs))))
    assert {request["model"] for request, _ in serial} == {"shapes", "variant"}
    for (request, images), (same_request, same_images) in zip(serial, parallel):
        assert request == same_request
        assert len(images) == len(same_images) == request["num_images"]
        assert all(np.array_equal(a, b) for a, b in zip(images, same_images)), request
    # the settings made a difference (a race that mixed them up could not pass unnoticed)
    firsts = [images[0] for _, images in serial]
    assert len({a.tobytes() for a in firsts}) == len(firsts)


def _preview_captions(job) -> list[str]:
    return [update[0][0]["caption"] for update in job.outputs()
            if isinstance(update[0], list) and update[0] and update[0][0]["caption"].startswith("step")]


def test_one_users_stop_ends_only_that_users_run_and_previews_are_private(studio):
    registry, url, folders = studio
    alice, bob = new_client(url, folders), new_client(url, folders)
    long_run = submit_live(alice, prompt="alice stops", steps=150, width=64, height=64, seed=1)
    other_run = submit_live(bob, prompt="bob goes on", scheduler="DDIM", steps=30, seed=2)
    for update in long_run:  # Alice's run is under way: it has sent a preview
        if isinstance(update[0], list) and update[0] and update[0][0]["caption"].startswith("step"):
            break
    alice.predict(api_name="/txt2img_stop")  # the Stop button: Alice's session's run only
    outcome, steps = registry.wait_for_ending("alice stops")
    assert outcome == "cancelled" and steps < 150
    gallery, info, progress = other_run.result(timeout=300)
    assert registry.wait_for_ending("bob goes on") == ("finished", 30)
    assert "Done: 1 image(s)" in progress and "Seed: 2" in info
    bob_captions = _preview_captions(other_run)
    assert bob_captions and all(caption.endswith("/ 30") for caption in bob_captions)
    alice_captions = _preview_captions(long_run)
    assert alice_captions and all(caption.endswith("/ 150") for caption in alice_captions)
    for update in other_run.outputs():  # every preview Bob saw has his size, not Alice's 64x64
        if isinstance(update[0], list) and update[0] and update[0][0]["caption"].startswith("step"):
            assert Image.open(update[0][0]["image"]).size == (128, 128)


def test_the_queue_shows_each_client_its_place_and_a_full_queue_says_so(studio):
    registry, url, folders = studio
    registry.gate.clear()
    quick = dict(width=64, height=64, steps=1, api_name="/txt2img")
    clients = [new_client(url, folders) for _ in range(CONCURRENCY + QUEUE_SIZE + 1)]
    held = [c.submit(prompt=f"hold {k}", seed=k, **quick) for k, c in enumerate(clients[:CONCURRENCY])]
    time.sleep(1)  # the first four are running (held at the gate) before the rest queue up behind them
    waiting = [c.submit(prompt=f"wait {k}", seed=k, **quick)
               for k, c in enumerate(clients[CONCURRENCY:CONCURRENCY + QUEUE_SIZE])]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        states = [job.status() for job in waiting]
        if all(state.code == Status.IN_QUEUE for state in states):
            break
        time.sleep(0.2)
    assert all(state.code == Status.IN_QUEUE for state in states), [s.code for s in states]
    assert sorted(state.rank for state in states) == list(range(QUEUE_SIZE))  # each knows its place
    assert all(state.rank < state.queue_size <= QUEUE_SIZE for state in states)  # "queue: 3/8" in the browser
    overflow = clients[-1].submit(prompt="one too many", seed=99, **quick)
    with pytest.raises(QueueError, match="Queue is full"):
        overflow.result(timeout=60)  # told at once, not left hanging
    registry.gate.set()
    for job in held + waiting:
        _, info = job.result(timeout=300)
        assert len(info["paths"]) == 1
    _, info = clients[-1].predict(prompt=PROMPT, seed=100, **quick)  # and the server goes on
    assert info["seeds"] == [100]


def test_generating_events_show_the_place_in_the_queue_on_the_progress_bar(studio):
    registry, _, _ = studio
    demo = build_demo(registry)
    live = [fn for fn in demo.fns.values() if fn.api_name in ("txt2img_live", "adapter_live", "compare")]
    assert len(live) == 3
    for fn in live:
        progress = [block for block in fn.outputs if "studio-progress" in str(getattr(block, "value", ""))]
        assert fn.show_progress == "minimal" and [b._id for b in fn.show_progress_on] == [progress[0]._id]


def test_nothing_was_lost(studio):
    """Runs last: every image any client was answered with is in the outputs folder, whole, with its settings,
    and nothing else is (the stopped run saved nothing)."""
    registry, _, folders = studio
    files = [p for p in (folders / "outputs").rglob("*") if p.is_file()]
    on_disk = sorted(str(p) for p in files if ".cond" not in p.name)
    assert sorted(registry.saved) == on_disk and len(on_disk) >= 30
    maps = [p for p in files if ".cond" in p.name]  # the adapter runs' condition maps, each beside its image
    assert len(maps) == 4 and all(str(p).split(".cond")[0] + ".png" in on_disk for p in maps)
    for path in on_disk:
        with Image.open(path) as image:
            image.load()
            assert "parameters" in image.info

"""Concurrent requests share weights, never state: four threads at once give the serial images."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from pipelines.components import LRUCache
from pipelines.rwlock import ReadWriteLock

SETTINGS = [("Euler a", 3), ("DPM++ 2M Karras", 5), ("Heun", 2), ("DDIM", 4)]


def test_four_threads_match_serial_runs(registry, small_request):
    requests = [small_request.with_(scheduler=name, steps=steps, seed=100 + k, num_images=1 + k % 2)
                for k, (name, steps) in enumerate(SETTINGS)]
    serial = [registry.generate(r).images for r in requests]
    start = threading.Barrier(len(requests))

    def run(request):
        start.wait()
        return registry.generate(request).images

    with ThreadPoolExecutor(len(requests)) as pool:
        parallel = list(pool.map(run, requests))
    for one, other in zip(serial, parallel):
        assert len(one) == len(other)
        assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(one, other))


def test_first_use_from_many_threads_loads_once(fresh_registry):
    start = threading.Barrier(4)

    def load(_):
        start.wait()
        return fresh_registry.load("shapes")

    with ThreadPoolExecutor(4) as pool:
        loaded = list(pool.map(load, range(4)))
    assert len({id(m) for m in loaded}) == 1
    assert list(fresh_registry.load_counts.values()) == [1]


def test_lru_cache_loads_each_key_once_and_evicts_the_oldest():
    cache = LRUCache(2)
    made = []
    for key in ["a", "b", "a", "c", "a", "b"]:
        cache.get(key, lambda key=key: made.append(key) or key.upper())
    assert made == ["a", "b", "c", "b"]  # "b" was the least recently used when "c" came
    assert cache.keys() == ["a", "b"]


def test_exclusive_waits_for_shared_holders():
    lock = ReadWriteLock()
    events = []
    readers_in = threading.Barrier(3)
    release = threading.Event()

    def reader(name):
        with lock.shared():
            events.append(f"{name} in")
            readers_in.wait()
            release.wait(5)
            events.append(f"{name} out")

    def writer():
        with lock.exclusive():
            events.append("writer in")

    readers = [threading.Thread(target=reader, args=(n,)) for n in ("r1", "r2")]
    for t in readers:
        t.start()
    readers_in.wait()  # both readers hold the lock together
    w = threading.Thread(target=writer)
    w.start()
    while not lock._writers_waiting:  # the writer is queued behind the readers
        time.sleep(0.001)
    assert "writer in" not in events
    release.set()
    for t in [*readers, w]:
        t.join(5)
    assert events[-1] == "writer in" and events.index("writer in") > events.index("r1 out")


def test_concurrent_lora_and_plain_requests_see_only_their_own(registry, small_request, tmp_path):
    from dreambooth_support import random_lora

    unet = registry.load("shapes").components["unet"]
    loras = {name: str(random_lora(unet, tmp_path / name, seed=seed)) for seed, name in enumerate(("one", "two"))}
    requests = [small_request.with_(seed=9, steps=3),
                small_request.with_(seed=9, steps=3, loras=[(loras["one"], 1.0)]),
                small_request.with_(seed=9, steps=3, loras=[(loras["two"], 1.0)]),
                small_request.with_(seed=9, steps=3, loras=[(loras["one"], 0.5), (loras["two"], 0.5)])]
    serial = [np.asarray(registry.generate(r).images[0]) for r in requests]
    assert not np.array_equal(serial[0], serial[1]) and not np.array_equal(serial[1], serial[2])
    start = threading.Barrier(len(requests) * 2)

    def run(request):
        start.wait()
        return np.asarray(registry.generate(request).images[0])

    with ThreadPoolExecutor(len(requests) * 2) as pool:
        parallel = list(pool.map(run, requests * 2))
    assert all(np.array_equal(a, b) for a, b in zip(serial * 2, parallel))
    # and the base model is exactly itself again afterwards
    assert np.array_equal(np.asarray(registry.generate(requests[0]).images[0]), serial[0])


def test_lora_runs_on_two_models_at_once_leave_torch_as_it_was(fresh_registry, small_request, tmp_path):
    """peft's and accelerate's empty-weights trick swaps torch.nn.Module.register_parameter process-wide;
    two LoRA injections at once (one per model, so no model lock orders them) once left it swapped for good:
    every later module was built on the meta device and every later LoRA run drew another picture."""
    import torch

    from dreambooth_support import shapes_lora_file
    from pipelines.catalog import SHAPES_DIR

    (tmp_path / "models" / "twin").symlink_to(SHAPES_DIR, target_is_directory=True)  # a second loaded model
    lora = str(shapes_lora_file(tmp_path / "models" / "ink.safetensors", seed=5))
    fresh_registry.refresh()
    requests = [small_request.with_(model=model, seed=seed, steps=2, loras=[(lora, weight)])
                for model in ("shapes", "twin") for seed, weight in ((1, 1.0), (2, 0.5))]
    serial = [np.asarray(fresh_registry.generate(r).images[0]) for r in requests]
    original = torch.nn.Module.register_parameter
    for _ in range(3):
        start = threading.Barrier(len(requests))

        def run(request):
            start.wait()
            return np.asarray(fresh_registry.generate(request).images[0])

        with ThreadPoolExecutor(len(requests)) as pool:
            parallel = list(pool.map(run, requests))
        assert torch.nn.Module.register_parameter is original
        assert torch.nn.Linear(2, 2).weight.device.type == "cpu"
        assert all(np.array_equal(a, b) for a, b in zip(serial, parallel))

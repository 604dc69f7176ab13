"""Out of memory in the middle of a run (simulated on this CPU machine: the UNet's forward raises torch's own
OutOfMemoryError after allocating, as a real one would): the memory is freed, the message names what to
lower, and the next request gives exactly the picture it would have given."""
from __future__ import annotations

import weakref

import numpy as np
import pytest
import torch

from pipelines.memory import OutOfMemory, free_memory


def fail_like_a_gpu(unet) -> list:
    """Make the UNet fail as a GPU out of memory does: a 64 MB block allocated, then torch's error. Returns
    weak references to the blocks, which show whether the failed run's memory was freed."""
    held = []

    def out_of_memory(*args, **kwargs):
        block = torch.empty(16 * 2**20)  # the activations a real step would have allocated
        held.append(weakref.ref(block))
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 24.00 GiB total)")

    unet.forward = out_of_memory
    return held


def test_a_run_out_of_memory_frees_it_names_what_to_lower_and_the_next_run_works(fresh_registry, small_request):
    request = small_request.with_(steps=2, num_images=3, seed=40)
    before = [np.asarray(image) for image in fresh_registry.generate(request).images]
    saved = sorted(fresh_registry.outputs.root.rglob("*.png"))
    unet = fresh_registry.load("shapes").components["unet"]
    held = fail_like_a_gpu(unet)
    try:
        with pytest.raises(OutOfMemory) as caught:
            fresh_registry.generate(request)
        error = caught.value
        assert error.field == "num_images" and "lower num_images" in str(error) and "width and height" in str(error)
        assert "3 image(s) of 64x64" in str(error) and "freed" in str(error)
        assert error.__context__ is None and error.__cause__ is None  # it holds nothing of the failed run
        assert held and all(block() is None for block in held)  # what the run allocated is free again
        del caught, error
        with pytest.raises(OutOfMemory, match=r"^width: .*lower width and height"):
            fresh_registry.generate(request.with_(num_images=1))
    finally:
        del unet.forward  # the memory is back
    assert sorted(fresh_registry.outputs.root.rglob("*.png")) == saved  # the failed runs saved nothing
    after = [np.asarray(image) for image in fresh_registry.generate(request).images]
    assert all(np.array_equal(a, b) for a, b in zip(before, after)) and len(after) == 3


def test_loading_a_model_out_of_memory_names_the_model(fresh_registry, small_request, monkeypatch):
    from pipelines import registry as registry_module

    def no_room(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 3.00 GiB")

    monkeypatch.setattr(registry_module.PipelineRegistry, "_load", no_room)
    with pytest.raises(OutOfMemory, match=r"^model: 'shapes' does not fit in the memory of cpu: .*--dtype float16"):
        fresh_registry.generate(small_request)


def test_freeing_empties_the_accelerators_cache(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty_cache"))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: calls.append("reset"))
    free_memory("cuda:0")
    assert calls == ["empty_cache", "reset"]
    calls.clear()
    free_memory("cpu")
    assert calls == []


def test_the_cli_says_it_in_one_line(tmp_path, capsys, monkeypatch):
    from pipelines import generation
    from studio.cli import main

    def no_room(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")

    monkeypatch.setattr(generation, "run_images", no_room)
    monkeypatch.setattr("pipelines.registry.run_images", no_room)
    status = main(["generate", "--prompt", "a red circle", "--steps", "1", "--width", "64", "--height", "64",
                   "--num-images", "2", "--out", str(tmp_path / "out"), "--models-dir", str(tmp_path),
                   "--device", "cpu"])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err  # (loading bars aside: `python -m studio` silences them)
    assert err.strip().splitlines()[-1].startswith("error: num_images: cpu ran out of memory making 2 image(s)")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.png"))

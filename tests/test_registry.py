"""The registry: loading once, reproducible seeds, progress, cancelling, comparing, adapters."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from pipelines import AdapterInput, GenerationCancelled, InvalidRequest, PipelineRegistry, StepUpdate
from pipelines.catalog import SHAPES_DIR


def same(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))


def pngs(root) -> list:
    return sorted(p for p in root.rglob("*.png")) if root.exists() else []


def test_model_loads_once_across_requests_and_modes(fresh_registry, small_request):
    sketch = Image.new("RGB", (64, 64))
    ImageDraw.Draw(sketch).ellipse((16, 16, 48, 48), outline="white", width=2)
    unets = set()
    for k, scheduler in enumerate(["Euler a", "DDIM", "DPM++ 2M Karras", "LCM"]):
        fresh_registry.generate(small_request.with_(scheduler=scheduler, seed=k, steps=2))
        unets.add(id(fresh_registry.load("shapes").components["unet"]))
    fresh_registry.generate(small_request.with_(steps=2, adapters=[AdapterInput("sketch", sketch)]))
    fresh_registry.compare(small_request.with_(steps=2), schedulers=["Euler", "Heun"])
    unets.add(id(fresh_registry.load("shapes").components["unet"]))
    assert len(unets) == 1
    assert list(fresh_registry.load_counts.values()) == [1]


def test_least_recently_used_model_is_evicted(tmp_path, small_request):
    models = tmp_path / "models"
    models.mkdir()
    (models / "copy").symlink_to(SHAPES_DIR, target_is_directory=True)
    registry = PipelineRegistry(models_dir=models, outputs_dir=tmp_path / "out", device="cpu", cache_size=1,
                                save_outputs=False)
    for model in ["shapes", "copy", "shapes"]:
        registry.generate(small_request.with_(model=model, steps=1))
    counts = {key[0]: n for key, n in registry.load_counts.items()}
    assert counts == {"shapes": 2, "copy": 1}
    assert registry.loaded_models() == ["shapes"]


def test_identical_requests_give_identical_pixels(registry, small_request):
    first = registry.generate(small_request.with_(seed=1234, num_images=2))
    second = registry.generate(small_request.with_(seed=1234, num_images=2))
    assert all(same(a, b) for a, b in zip(first.images, second.images))
    assert not same(first.images[0], first.images[1])


def test_image_k_uses_seed_plus_k(registry, small_request):
    batch = registry.generate(small_request.with_(seed=40, num_images=3, scheduler="Euler a"))
    assert batch.seeds == [40, 41, 42]
    for k, image in enumerate(batch.images):
        alone = registry.generate(small_request.with_(seed=40 + k, num_images=1, scheduler="Euler a"))
        assert same(image, alone.images[0])
        assert batch.items[k].request.seed == 40 + k and batch.items[k].request.num_images == 1


def test_random_seed_is_reported(registry, small_request):
    result = registry.generate(small_request.with_(seed=-1, num_images=2, steps=1))
    assert result.request.seed >= 0
    assert result.seeds == [result.request.seed, result.request.seed + 1]
    again = registry.generate(small_request.with_(seed=result.seeds[1], steps=1))
    assert same(again.images[0], result.images[1])


def test_progress_reports_every_step_with_previews(registry, small_request):
    updates: list[StepUpdate] = []
    registry.generate(small_request.with_(steps=4, num_images=2, scheduler="Heun"), on_step=updates.append,
                      preview_every=2)
    assert [u.step for u in updates] == list(range(1, 9)) and {u.total for u in updates} == {8}
    previews = [u.step for u in updates if u.preview is not None]
    assert previews == [2, 4, 6, 8]
    assert all(u.preview.size == (64, 64) for u in updates if u.preview is not None)


def test_stop_cancels_and_saves_nothing(fresh_registry, small_request):
    calls = []
    with pytest.raises(GenerationCancelled):
        fresh_registry.generate(small_request.with_(steps=10, num_images=2), on_step=calls.append,
                                should_stop=lambda: len(calls) >= 3)
    assert len(calls) == 3
    assert pngs(fresh_registry.outputs.root) == []
    # the shared model is still usable afterwards
    assert fresh_registry.generate(small_request.with_(steps=2)).paths


def test_stop_cancels_an_adapter_run(fresh_registry, small_request):
    calls = []
    with pytest.raises(GenerationCancelled):
        fresh_registry.generate(small_request.with_(steps=6, adapters=[AdapterInput("edge", Image.new("RGB", (64, 64)))]),
                                on_step=calls.append, should_stop=lambda: len(calls) >= 2)
    assert len(calls) == 2 and pngs(fresh_registry.outputs.root) == []


def test_results_are_saved_under_the_date(fresh_registry, small_request):
    result = fresh_registry.generate(small_request.with_(num_images=2, steps=2, seed=7))
    assert [p.rsplit("/", 1)[-1] for p in result.paths] == ["00000-7.png", "00001-8.png"]
    folder = fresh_registry.outputs.folder()
    assert all(p.startswith(str(folder)) for p in result.paths)


def test_adapter_condition_maps_are_saved_beside_the_image(fresh_registry, small_request):
    sketch = Image.new("RGB", (64, 64))
    ImageDraw.Draw(sketch).rectangle((10, 10, 50, 50), outline="white", width=2)
    request = small_request.with_(steps=2, adapters=[AdapterInput("sketch", sketch, 0.8),
                                                      AdapterInput("edge", sketch, 0.5)])
    result = fresh_registry.generate(request)
    path = result.paths[0]
    conds = [path.replace(".png", f".cond{k}.png") for k in range(2)]
    assert all(Image.open(c).size == (64, 64) for c in conds)
    assert len(result.items[0].condition_maps) == 2
    assert "Adapter 1 map: " in Image.open(path).info["parameters"]


def test_adapter_of_another_family_is_refused(registry, small_request):
    with pytest.raises(InvalidRequest) as caught:
        registry.generate(small_request.with_(adapters=[AdapterInput("openpose", Image.new("RGB", (64, 64)))]))
    assert caught.value.field == "adapters"


def test_compare_makes_a_labelled_grid_with_one_seed(registry, small_request):
    grid, results = registry.compare(small_request.with_(steps=2, seed=5), schedulers=["Euler", "DDIM", "UniPC"],
                                     steps_values=[1, 2])
    assert len(results) == 6 and {r.seeds[0] for r in results} == {5}
    assert grid.width > 3 * 64 and grid.height > 2 * 64
    assert [r.request.scheduler for r in results[:3]] == ["Euler", "DDIM", "UniPC"]


def test_compare_reports_each_cell_and_stops_between_steps(registry, small_request):
    from pipelines.grid import CellDone

    cells, steps = [], []
    grid, _ = registry.compare(small_request.with_(steps=2, seed=3), schedulers=["Euler", "DDIM"],
                               guidance_values=[5.0], on_cell=cells.append, on_step=steps.append)
    assert [(c.row, c.column, c.result.request.scheduler) for c in cells] == [(0, 0, "Euler"), (0, 1, "DDIM")]
    assert all(isinstance(c, CellDone) for c in cells)
    assert [(u.step, u.total) for u in steps] == [(1, 4), (2, 4), (3, 4), (4, 4)]  # over the whole grid
    made = []
    with pytest.raises(GenerationCancelled):
        registry.compare(small_request.with_(steps=2, seed=3), schedulers=["Euler", "DDIM"], on_cell=made.append,
                         should_stop=lambda: bool(made))
    assert [c.result.request.scheduler for c in made] == ["Euler"]  # the second cell never ran


def test_compare_checks_every_cell_before_running(fresh_registry, small_request):
    with pytest.raises(InvalidRequest) as caught:
        fresh_registry.compare(small_request, schedulers=["Euler", "LCM"], steps_values=[2, 60])
    assert caught.value.field == "steps"
    assert pngs(fresh_registry.outputs.root) == []

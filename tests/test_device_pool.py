"""`app.py --devices`: one worker per device, fed from one queue (pipelines/pool.py), tested with two CPU
"devices"."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from pipelines import GenerationRequest
from pipelines.pool import DevicePool

REQUEST = GenerationRequest(prompt="a large red circle in the center on a white background", steps=3,
                            width=64, height=64, seed=1)


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    return DevicePool.create(["cpu", "cpu"], models_dir=None, outputs_dir=tmp_path_factory.mktemp("pool"),
                             dtype="float32", save_outputs=False)


def test_requests_spread_over_the_devices_one_at_a_time_each(pool, registry):
    running, seen, peak, lock = {}, [], {}, threading.Lock()
    for worker in pool.registries:
        original = worker.generate

        def tracked(request, _original=original, _worker=worker, **kwargs):
            with lock:
                running[id(_worker)] = running.get(id(_worker), 0) + 1
                peak[id(_worker)] = max(peak.get(id(_worker), 0), running[id(_worker)])
                seen.append(id(_worker))
            try:
                time.sleep(0.2)  # long enough for the other requests to queue up behind it
                return _original(request, **kwargs)
            finally:
                with lock:
                    running[id(_worker)] -= 1
        worker.generate = tracked
    try:
        with ThreadPoolExecutor(4) as threads:
            results = list(threads.map(lambda k: pool.generate(REQUEST.with_(seed=k)), range(4)))
    finally:
        for worker in pool.registries:
            del worker.generate
    assert set(seen) == {id(w) for w in pool.registries}, "both devices worked"
    assert max(peak.values()) == 1, "no device ran two requests at once"
    for k, result in enumerate(results):
        alone = registry.generate(REQUEST.with_(seed=k)).images[0]
        assert np.array_equal(np.asarray(result.images[0]), np.asarray(alone))


def test_the_pool_answers_like_a_registry(pool):
    assert pool.workers == 2 and "shapes" in pool.model_names()
    assert pool.limits("shapes").default_width == 128
    pool.validate(REQUEST)
    pool.refresh()
    grid, results = pool.compare(REQUEST, schedulers=["Euler", "DDIM"])
    assert len(results) == 2 and grid.size[0] > 64


def test_app_devices_option():
    import app

    args = app.parse_args(["--devices", "cpu,cpu", "--concurrency", "2", "--dtype", "float32"])
    assert args.devices == ["cpu", "cpu"]
    made = app.make_registry(args)
    assert isinstance(made, DevicePool) and made.workers == 4
    with pytest.raises(SystemExit):
        app.parse_args(["--devices", "cpu", "--device", "cpu"])

"""The benchmark suite: the studio beside plain diffusers doing the same work, in the same run.

    python -m bench [--quick] [--models shapes sd15 sdxl] [--device cpu|cuda] [--json FILE]

For the bundled model and random-weight SD 1.5 and SDXL models (bench/models.py), each side runs in a
process of its own (bench/worker.py), one after the other: load, first image, seconds per image and
denoising steps per second per sampler (medians of repeated runs), the first image after switching
sampler, after turning an adapter on and after switching model, and peak memory (RSS; CUDA's peak on a
GPU). The studio also runs with step caching. Cold start: process start to the web app answering, and to
its first image over the API, against a plain diffusers script loading the model and drawing one image.
Prints a table (ratio: how many times faster or smaller the studio is) and writes a JSON file.

On a CPU the big models run at reduced settings (stated in the table): an SD 1.5 step at 512x512 takes
seconds there. The GPU plan is the issue's: SD 1.5 512x512 25 steps DPM++ 2M, SDXL 1024x1024 30 steps.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "runs" / "bench"
PYTHON = sys.executable


def plans(device: str, quick: bool) -> dict[str, dict]:
    gpu = device.startswith("cuda")
    shapes = {"size": 128, "steps": 20, "repeats": 3 if quick else 7,
              "samplers": ["Euler a", "DPM++ 2M Karras"] + ([] if quick else ["UniPC", "DDIM"]),
              "adapter": True, "step_cache": [3]}
    if gpu:
        sd15 = {"size": 512, "steps": 25, "repeats": 3 if quick else 7, "samplers": ["DPM++ 2M", "Euler a"],
                "adapter": True, "step_cache": [3], "switch_model": "shapes", "switch_size": 128, "switch_steps": 20}
        sdxl = {"size": 1024, "steps": 30, "repeats": 2 if quick else 5, "samplers": ["DPM++ 2M", "Euler a"],
                "adapter": True, "step_cache": [3]}
    else:  # seconds per step on a CPU: fewer steps, fewer repeats; per-step figures stay comparable
        sd15 = {"size": 512, "steps": 2 if quick else 3, "repeats": 1 if quick else 2,
                "samplers": ["DPM++ 2M"] + ([] if quick else ["Euler a"]), "repeat_all_samplers": False,
                "adapter": not quick, "step_cache": [3], "switch_model": "shapes", "switch_size": 128,
                "switch_steps": 20}
        sdxl = {"size": 512, "steps": 2, "repeats": 1, "samplers": ["DPM++ 2M"], "adapter": not quick,
                "step_cache": [] if quick else [3]}
    return {"shapes": shapes, "sd15": sd15, "sdxl": sdxl}


def worker_env() -> dict:
    from bench.models import HF_CACHE

    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(HF_CACHE), "PYTHONPATH": str(REPO)}


def run_worker(plan: dict, timeout: float) -> dict:
    done = subprocess.run([PYTHON, "-m", "bench.worker", json.dumps(plan)], cwd=REPO, env=worker_env(),
                          capture_output=True, text=True, timeout=timeout)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"error": " | ".join(tail)}
    return json.loads(lines[-1])


def measure_model(plan: dict, timeout: float) -> dict:
    """Each side's start in a process of its own (load, first image, peak memory), then the speed figures
    with both sides taking turns in one process when both fit in memory, else one process per side."""
    sides = {}
    for side in ("studio", "diffusers"):
        need = {"sd15": 6, "sdxl": 18}.get(plan["model"], 1) if side == "diffusers" and plan["device"] == "cpu" else 0
        free = available_gib()
        if free is not None and need > free:
            sides[side] = {"side": side, "error": f"skipped: needs ~{need} GiB, {free:.1f} GiB available"}
            continue
        print(f"{plan['model']}: {side} start ...", flush=True)
        sides[side] = {"side": side, **run_worker({**plan, "side": side, "start": True}, timeout)}
    running = [side for side, result in sides.items() if "error" not in result]
    together = sum(sides[side].get("peak_rss_gib", 0) for side in running)
    free = available_gib()
    groups = [running] if free is None or together + 1 < free else [[side] for side in running]
    for group in groups:
        print(f"{plan['model']}: {' and '.join(group)} taking turns ...", flush=True)
        found = run_worker({**plan, "sides": group}, timeout)
        for side in group:
            sides[side].update(found.get(side, {"error": found.get("error")}))
            sides[side]["together"] = len(group) > 1
    return sides


def available_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, process, deadline: float) -> None:
    import urllib.request

    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited ({process.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError("the app did not answer")


def studio_cold_start(timeout: float) -> tuple[float, float]:
    """(seconds to the app answering, seconds to its first image over the API), from process start."""
    from gradio_client import Client

    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.time()
        app = subprocess.Popen([PYTHON, "app.py", "--port", str(port), "--models-dir", f"{tmp}/models",
                                "--outputs-dir", f"{tmp}/outputs"], cwd=REPO, env=worker_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}/"
            _wait_http(url, app, started + timeout)
            answering = time.time() - started
            Client(url, verbose=False).predict(prompt="a large red circle in the top left on a blue background",
                                               steps=20, seed=0, api_name="/txt2img")
            return answering, time.time() - started
        finally:
            app.terminate()
            app.wait(timeout=30)


def diffusers_cold_start(timeout: float) -> tuple[float, float]:
    """The same two moments for a plain diffusers script: loaded and ready, then its first image."""
    plan = {"cold": True, "side": "diffusers", "model": "shapes", "size": 128, "steps": 20, "samplers": ["Euler a"]}
    started = time.time()
    process = subprocess.Popen([PYTHON, "-m", "bench.worker", json.dumps(plan)], cwd=REPO, env=worker_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    marks = {}
    try:
        for line in process.stdout:
            marks[line.strip()] = time.time() - started
            if line.strip() == "image" or time.time() - started > timeout:
                break
    finally:
        process.wait(timeout=60)
    return marks["ready"], marks["image"]


def cold_starts(repeats: int, timeout: float) -> dict:
    out = {}
    for name, measure in (("studio", studio_cold_start), ("diffusers", diffusers_cold_start)):
        runs = [measure(timeout) for _ in range(repeats)]
        out[name] = {"ready_s": statistics.median(r[0] for r in runs),
                     "first_image_s": statistics.median(r[1] for r in runs), "runs": runs}
    return out


def ratio(diffusers, studio, larger_is_better: bool = False) -> float | None:
    if not diffusers or not studio:
        return None
    return studio / diffusers if larger_is_better else diffusers / studio


def rows(results: dict) -> list[tuple]:
    """(figure, model, setting, studio, diffusers, ratio) for the table."""
    out = []
    for model, sides in results["models"].items():
        studio, plain = sides.get("studio", {}), sides.get("diffusers", {})
        plan = results["plans"][model]
        setting = f"{plan['size']}px {plan['steps']} steps"
        for figure in ("load_s", "first_image_s", "switch_sampler_s", "switch_adapter_s", "switch_model_s"):
            if figure in studio or figure in plain:
                out.append((figure, model, setting, studio.get(figure), plain.get(figure),
                            ratio(plain.get(figure), studio.get(figure))))
        for job, figures in studio.get("jobs", {}).items():
            base = job.split(" +step cache")[0]
            theirs = plain.get("jobs", {}).get(base, {})
            out.append((f"s/image {job}", model, setting, figures["s_per_image"], theirs.get("s_per_image"),
                        ratio(theirs.get("s_per_image"), figures["s_per_image"])))
            if "step cache" in job and plan["steps"] < 10:
                continue  # over 2-3 steps the loop's rate says only which steps were cached
            out.append((f"steps/s {job}", model, setting, figures["steps_per_s"], theirs.get("steps_per_s"),
                        ratio(theirs.get("steps_per_s"), figures["steps_per_s"], larger_is_better=True)))
        for figure in ("peak_rss_gib", "cuda_peak_gib"):
            if figure in studio:
                out.append((figure, model, setting, studio.get(figure), plain.get(figure),
                            ratio(plain.get(figure), studio.get(figure))))
        turns = "taking turns in one process" if studio.get("together") else "one process each"
        out.append((f"settings ({turns})", model, setting, studio.get("settings") or studio.get("error"),
                    plain.get("settings") or plain.get("error"), None))
    for figure in ("ready_s", "first_image_s"):
        cold = results.get("cold_start")
        if cold:
            out.append((f"cold start: {figure}", "shapes", "process start", cold["studio"][figure],
                        cold["diffusers"][figure], ratio(cold["diffusers"][figure], cold["studio"][figure])))
    return out


def table(results: dict) -> str:
    def cell(value) -> str:
        if value is None:
            return ""
        return f"{value:.3f}" if isinstance(value, float) else str(value)
    lines = ["| figure | model | at | studio | diffusers | ratio |", "| --- | --- | --- | --- | --- | --- |"]
    for figure, model, setting, studio, plain, r in rows(results):
        lines.append(f"| {figure} | {model} | {setting} | {cell(studio)} | {cell(plain)} | "
                     f"{f'{r:.2f}x' if r else ''} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="The studio beside plain diffusers: speed, memory, start-up.")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and steps (a few minutes on a CPU)")
    parser.add_argument("--models", nargs="+", default=["shapes", "sd15", "sdxl"], choices=["shapes", "sd15", "sdxl"])
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when there is one)")
    parser.add_argument("--no-cold-start", action="store_true")
    parser.add_argument("--timeout", type=float, default=3600, help="per worker process, in seconds")
    parser.add_argument("--json", default=None, help=f"where to write the results (default: {OUT_DIR}/...)")
    args = parser.parse_args(argv)
    import torch

    from bench.models import prepare
    from pipelines.fast.machine import cpu_info

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    all_plans = plans(device, args.quick)
    results = {"device": device, "machine": cpu_info().describe() if device == "cpu" else
               torch.cuda.get_device_name(0), "python": platform.python_version(), "torch": torch.__version__,
               "quick": args.quick, "load_average_start": os.getloadavg(), "plans": {}, "models": {}}
    prepare(args.models)
    for model in args.models:
        plan = {**all_plans[model], "model": model, "device": device}
        results["plans"][model] = plan
        results["models"][model] = measure_model(plan, args.timeout)
    if not args.no_cold_start and "shapes" in args.models:
        print("cold start ...", flush=True)
        results["cold_start"] = cold_starts(1 if args.quick else 3, args.timeout)
    results["load_average_end"] = os.getloadavg()
    text = table(results)
    print(text)
    path = Path(args.json) if args.json else OUT_DIR / f"results-{device}{'-quick' if args.quick else ''}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**results, "table": text}, indent=2, default=str))
    print(f"written: {path}")
    return 0

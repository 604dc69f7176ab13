"""Speed of one text-to-image request: the studio against plain diffusers, measured in the same run.

    python -m bench.speed [--runs 9] [--steps 20] [--threads 2]

Both sides load the bundled `shapes` model in float32 on the CPU and draw a 128x128 image with Euler a,
20 steps, CFG 7. Plain diffusers is StableDiffusionPipeline called directly; the studio is
PipelineRegistry.generate (fresh scheduler and generator per request, validation, no saving).
Prints medians (the machine is noisy) and the ratio studio / diffusers. The bar: one image <= 0.5 s."""
from __future__ import annotations

import argparse
import pathlib
import statistics
import time

import torch

MODEL = pathlib.Path(__file__).resolve().parent.parent / "assets" / "shapes"
PROMPT = "a large red circle in the top left on a blue background"


def median_seconds(run, runs: int) -> tuple[float, list[float]]:
    run()  # warm-up: first-call allocations and lazy imports
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def plain_diffusers(steps: int):
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(MODEL, dtype=torch.float32)
    pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)

    def run():
        with torch.inference_mode():
            pipe(PROMPT, num_inference_steps=steps, guidance_scale=7.0, height=128, width=128,
                 generator=torch.Generator().manual_seed(1))
    return run


def studio(steps: int):
    from pipelines import GenerationRequest, PipelineRegistry

    registry = PipelineRegistry(models_dir=None, device="cpu", save_outputs=False)
    request = GenerationRequest(prompt=PROMPT, model="shapes", scheduler="Euler a", steps=steps,
                                guidance_scale=7.0, width=128, height=128, seed=1)
    return lambda: registry.generate(request)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = {}
    for name, make in (("plain diffusers", plain_diffusers), ("studio", studio)):
        results[name], times = median_seconds(make(args.steps), args.runs)
        print(f"{name:16s} median {results[name]:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in times)})")
    ratio = results["studio"] / results["plain diffusers"]
    print(f"studio / plain diffusers: {ratio:.2f}x")
    bar = 0.5
    print(f"bar: one {args.steps}-step 128x128 image <= {bar} s: studio {results['studio']:.3f} s -> "
          f"{'met' if results['studio'] <= bar else 'NOT met'}")


if __name__ == "__main__":
    main()

"""What the fast paths cost in quality: the bundled model's judged accuracy per setting, through the studio.

    python -m bench.accuracy [--prompts 200] [--configs float32 bfloat16 float32+cache2 ...] [--json FILE]

Held-out prompts (training/shapes/evaluate.py's: scenes never seen in training), Euler a, 20 steps, CFG 7,
seed k for prompt k; the classical judge (pipelines/shapes/judge.py) reads each image back. "Accuracy" is
the mean over the five attributes (shape colour, background, class, position, size); each is printed too.
A config is a dtype, optionally `+cacheN` (step_cache=N) and `+cl` (channels_last).
"""
from __future__ import annotations

import argparse
import json
import time

DEFAULT_CONFIGS = ("float32", "bfloat16", "float32+cache2", "float32+cache3", "bfloat16+cache3")


def parse_config(text: str) -> tuple[str, int, bool]:
    parts = text.split("+")
    cache = next((int(p.removeprefix("cache")) for p in parts[1:] if p.startswith("cache")), 0)
    return parts[0], cache, "cl" in parts[1:]


def registry_for(dtype: str, channels_last: bool):
    import torch

    from pipelines import PipelineRegistry

    registry = PipelineRegistry(models_dir=None, device="cpu", dtype=dtype, save_outputs=False)
    if channels_last:
        registry.load("shapes").components["unet"].to(memory_format=torch.channels_last)
    return registry


def judged(registry, cases, step_cache: int = 0, scheduler: str = "Euler a", steps: int = 20) -> dict:
    from pipelines import GenerationRequest
    from pipelines.shapes.judge import agreement, read

    readings = []
    for k, (_, prompt) in enumerate(cases):
        request = GenerationRequest(prompt=prompt, model="shapes", scheduler=scheduler, steps=steps,
                                    guidance_scale=7.0, seed=k, step_cache=step_cache)
        readings.append(read(registry.generate(request).images[0]))
    scores = agreement([scene for scene, _ in cases], readings)
    return {"accuracy": sum(scores.values()) / len(scores), **scores}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS))
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    from pipelines.shapes.world import evaluation_prompts

    cases = evaluation_prompts(args.prompts)
    results = {}
    for config in args.configs:
        dtype, cache, channels_last = parse_config(config)
        started = time.perf_counter()
        results[config] = judged(registry_for(dtype, channels_last), cases, cache)
        results[config]["seconds"] = round(time.perf_counter() - started, 1)
        row = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) and k != "seconds" else f"{k} {v}"
                        for k, v in results[config].items())
        print(f"{config:22s} {row}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"prompts": args.prompts, "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Measure the shapes model against its bars with the classical judge.

    python -m training.shapes.evaluate --model assets/shapes [--prompts 200] [--adapters 12] [--samplers 48]
        [--drawings 24] [--grid-drawings 24] [--phrasings 108] [--json out.json]

Everything runs through the studio's own generation path (PipelineRegistry.generate), as users run it.
Text-to-image: held-out prompts naming every attribute (Euler a, 20 steps, CFG 7, one seed each), scored per
attribute. Adapters: rendered conditions of held-out scenes, IoU of the generated shape against the
condition's shape, once with the scene's own position in the prompt and once with a different one.
Drawings: held-out maps drawn as people draw them (pipelines/shapes/drawings.py), IoU with the drawn shape,
the prompt naming the drawn position, then the far one; `--grid-drawings` the same styles at the grid only.
Samplers: every registry sampler but LCM at its suggested steps (Automatic schedule), shape colour and class
on held-out prompts. Phrasings: held-out scenes described in words outside the caption grammar
(pipelines/shapes/phrasing.py), through the training templates, then through the held-out templates (never
trained on), scored per attribute as text-to-image is. `generate` and `text_accuracy` also take a plain
diffusers pipeline (training uses them)."""
from __future__ import annotations

import argparse
import json
import random

import numpy as np
import torch

from pipelines.shapes.judge import agreement, iou, read
from pipelines.shapes.render import condition_map, shape_geometry, shape_mask
from pipelines.shapes.world import POSITIONS, Scene, caption, evaluation_prompts


def load(model: str):
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(model, dtype=torch.float32)
    pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


class Studio:
    """The studio's generation path on one model, with the call shape of a diffusers pipeline's batch."""

    def __init__(self, model: str):
        from pipelines import PipelineRegistry

        self.model = model
        self.registry = PipelineRegistry(models_dir=None, outputs_dir="outputs", device="cpu", dtype="float32",
                                         save_outputs=False)

    def images(self, prompts, seeds, steps=20, guidance=7.0, scheduler="Euler a", conditions=None, kind=None):
        from pipelines import AdapterInput, GenerationRequest

        out = []
        for k, (prompt, seed) in enumerate(zip(prompts, seeds)):
            adapters = [AdapterInput(kind, conditions[k])] if conditions is not None else []
            request = GenerationRequest(prompt=prompt, model=self.model, scheduler=scheduler, steps=steps,
                                        guidance_scale=guidance, width=128, height=128, seed=seed,
                                        adapters=adapters)
            out += self.registry.generate(request).images
        return out


def generate(pipe, prompts: list[str], seeds: list[int], steps=20, guidance=7.0, batch=16, **kwargs):
    if isinstance(pipe, Studio):
        return pipe.images(prompts, seeds, steps, guidance, **kwargs)
    images = []
    for i in range(0, len(prompts), batch):
        generators = [torch.Generator().manual_seed(s) for s in seeds[i:i + batch]]
        extra = {k: (v[i:i + batch] if isinstance(v, list) else v) for k, v in kwargs.items()}
        with torch.inference_mode():
            images += pipe(prompts[i:i + batch], num_inference_steps=steps, guidance_scale=guidance,
                           height=128, width=128, generator=generators, **extra).images
    return images


def text_accuracy(pipe, count: int = 200, seed: int = 0) -> dict[str, float]:
    cases = evaluation_prompts(count)
    images = generate(pipe, [c for _, c in cases], [seed + k for k in range(count)])
    return agreement([s for s, _ in cases], [read(image) for image in images])


def phrasing_accuracy(pipe, count: int = 108, seed: int = 0) -> dict[str, dict[str, float]]:
    """Per attribute, on `count` held-out scenes described through the training and the held-out templates."""
    from pipelines.shapes.phrasing import HELD_OUT_TEMPLATES, TRAINING_TEMPLATES, phrasing_prompts

    out = {}
    for label, templates in (("training templates", TRAINING_TEMPLATES), ("held-out templates", HELD_OUT_TEMPLATES)):
        cases = phrasing_prompts(count, templates)
        images = generate(pipe, [c for _, c in cases], [seed + k for k in range(count)])
        out[label] = agreement([s for s, _ in cases], [read(image) for image in images])
    return out


def adapter_cases(kind: str, count: int, seed: int = 7):
    """(condition map, its shape mask, prompt with the right position, prompt with a wrong position)."""
    rng = random.Random(seed)
    cases = []
    for scene, _ in evaluation_prompts(count, seed=seed):
        geometry = shape_geometry(scene, rng)
        wrong = Scene(scene.shape, scene.color, scene.background, scene.size,
                      rng.choice([p for p in POSITIONS if p != scene.position]))
        cases.append((condition_map(kind, scene, geometry), shape_mask(scene, geometry),
                      caption(scene, rng), caption(wrong, rng)))
    return cases


def adapter_iou(studio: Studio, kind: str, count: int = 12) -> dict[str, float]:
    cases = adapter_cases(kind, count)
    out = {}
    for label, column in (("own position", 2), ("other position", 3)):
        images = studio.images([c[column] for c in cases], list(range(count)), conditions=[c[0] for c in cases],
                               kind=kind)
        out[label] = float(np.mean([iou(read(im).mask, c[1]) for im, c in zip(images, cases)]))
    return out


def far_position(position: str) -> str:
    """A position far from `position`: the opposite cell of the 3x3 grid (the centre goes to a corner)."""
    column, row = POSITIONS[position]
    target = (2 - column, 2 - row) if (column, row) != (1, 1) else (0, 0)
    return next(name for name, cell in POSITIONS.items() if cell == target)


def drawing_iou(studio: Studio, kind: str, count: int = 12, seed: int = 2025, anywhere: bool = True) -> dict[str, float]:
    """Held-out drawings (pipelines/shapes/drawings.py: other stroke widths, hand jitter and gaps, the
    sketchpad, any position and size, other Canny thresholds, other depth greys and gradients): IoU of the
    generated shape with the drawn one, the prompt naming the drawn position, then the far one. `anywhere`
    False: the same styles, drawn only where the renderer puts shapes (its grid cells and two sizes)."""
    from pipelines.shapes.drawings import held_out_drawings

    drawings = held_out_drawings(kind, count, seed, anywhere)
    rng = random.Random(seed)
    out = {}
    for label in ("own position", "other position"):
        prompts = []
        for drawing in drawings:
            scene = drawing.scene
            if label == "other position":
                scene = Scene(scene.shape, scene.color, scene.background, scene.size, far_position(scene.position))
            prompts.append(caption(scene, rng))
        images = studio.images(prompts, [500 + k for k in range(count)], conditions=[d.image for d in drawings],
                               kind=kind)
        scores = [iou(read(im).mask, d.mask) for im, d in zip(images, drawings)]
        out[label] = float(np.mean(scores))
        for style in dict.fromkeys(d.style for d in drawings):
            out[f"{label}, {style}"] = float(np.mean([s for s, d in zip(scores, drawings) if d.style == style]))
    return out


def sampler_accuracy(studio: Studio, count: int = 48, seed: int = 99) -> dict[str, dict[str, float]]:
    """Shape colour and class per registry sampler (LCM aside: it needs a distilled model) at its suggested
    steps, on the same prompts and seeds."""
    from pipelines.schedulers import scheduler_names, suggested_steps

    cases = evaluation_prompts(count, seed=seed)
    out = {}
    for name in scheduler_names():
        if name == "LCM":
            continue
        images = studio.images([c for _, c in cases], list(range(count)), steps=suggested_steps(name),
                               scheduler=name)
        out[name] = agreement([s for s, _ in cases], [read(image) for image in images], ("color", "shape"))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="assets/shapes")
    parser.add_argument("--prompts", type=int, default=200)
    parser.add_argument("--adapters", type=int, default=12, help="conditions per adapter kind (0: skip)")
    parser.add_argument("--drawings", type=int, default=0, help="held-out drawings per adapter kind (0: skip)")
    parser.add_argument("--grid-drawings", type=int, default=0,
                        help="held-out drawings per kind at the renderer's grid positions and sizes (0: skip)")
    parser.add_argument("--kinds", default="sketch,edge,depth")
    parser.add_argument("--samplers", type=int, default=0, help="prompts per scheduler (0: skip)")
    parser.add_argument("--phrasings", type=int, default=0,
                        help="held-out scenes per template set, in words outside the grammar (0: skip)")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    studio = Studio(args.model)
    report = {}
    if args.prompts:
        report["text"] = text_accuracy(studio, args.prompts)
        print("text-to-image", json.dumps(report["text"]), flush=True)
    if args.phrasings:
        report["phrasings"] = phrasing_accuracy(studio, args.phrasings)
        for label, scores in report["phrasings"].items():
            print(label, json.dumps(scores), flush=True)
    if args.adapters:
        for kind in args.kinds.split(","):
            report[kind] = adapter_iou(studio, kind, args.adapters)
            print(kind, json.dumps(report[kind]), flush=True)
    if args.drawings:
        for kind in args.kinds.split(","):
            report[f"{kind} drawings"] = drawing_iou(studio, kind, args.drawings)
            print(f"{kind} drawings", json.dumps(report[f"{kind} drawings"]), flush=True)
    if args.grid_drawings:
        for kind in args.kinds.split(","):
            report[f"{kind} grid drawings"] = drawing_iou(studio, kind, args.grid_drawings, anywhere=False)
            print(f"{kind} grid drawings", json.dumps(report[f"{kind} grid drawings"]), flush=True)
    if args.samplers:
        report["samplers"] = sampler_accuracy(studio, args.samplers)
        for name, scores in report["samplers"].items():
            print(f"{name:26s} colour {scores['color']:.0%} class {scores['shape']:.0%}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()

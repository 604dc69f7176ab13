"""One model's measurements in a process of their own.

    python -m bench.worker '{"start": true, "side": "studio", "model": "sd15", "device": "cpu", ...}'
    python -m bench.worker '{"sides": ["studio", "diffusers"], "model": "sd15", "device": "cpu", ...}'

With "start": one side's load time, first image and peak memory (a process of its own, so its memory is
its own). Otherwise the speed figures of the named sides, taking turns in one process: per job (sampler,
adapter, step cache) the median seconds per image and denoising steps per second, and the first image after
switching sampler, adapter and model. Prints one JSON object. A side is "studio" (the studio's
registry with its default fast paths) or "diffusers" (plain diffusers: float32 on a CPU, float16 with SDPA
on a GPU, the same sampler built from the same config, the same seeds).
"""
from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from pathlib import Path

PROMPT = "a large red circle in the top left on a blue background"


class StepClock:
    """Times the denoising loop alone: from the first step's end to the last's (steps - 1 intervals)."""

    def __init__(self):
        self.marks: list[float] = []

    def tick(self, *_args, **_kwargs):
        self.marks.append(time.perf_counter())
        return {} if len(_args) == 4 else None  # callback_on_step_end must return a dict

    def steps_per_second(self) -> float | None:
        if len(self.marks) < 2:
            return None
        return (len(self.marks) - 1) / (self.marks[-1] - self.marks[0])


def condition_map(model: str, size: int):
    from PIL import Image, ImageDraw

    if model == "shapes":
        from pipelines.shapes.render import condition_map as shapes_map, shape_geometry
        from pipelines.shapes.world import Scene

        scene = Scene("star", "red", "blue", "large", "center")
        return shapes_map("sketch", scene, shape_geometry(scene)).resize((size, size))
    image = Image.new("RGB", (size, size), "black")
    ImageDraw.Draw(image).ellipse((size // 4, size // 4, 3 * size // 4, 3 * size // 4), outline="white",
                                  width=max(2, size // 128))
    return image


def model_source(model: str) -> str:
    if model == "shapes":
        from pipelines.catalog import SHAPES_DIR

        return str(SHAPES_DIR)
    from bench.models import model_dir

    return str(model_dir(model))


class StudioSide:
    def __init__(self, plan):
        from pipelines import PipelineRegistry

        self.plan = plan
        self.registry = PipelineRegistry(models_dir=None, device=plan.get("device"), save_outputs=False,
                                         compile=plan.get("compile", False))
        self.model = "shapes" if plan["model"] == "shapes" else model_source(plan["model"])

    def describe(self) -> str:
        return self.registry.fast_paths_for(self.registry.model_info(self.model).family).describe()

    def load(self):
        self.registry.load(self.model)

    def image(self, sampler: str, seed: int, adapter: bool = False, step_cache: int = 0, model: str | None = None):
        from pipelines import AdapterInput, GenerationRequest

        plan, clock = self.plan, StepClock()
        size, steps = (plan["size"], plan["steps"]) if model is None else (plan["switch_size"], plan["switch_steps"])
        adapters = [AdapterInput("sketch", condition_map(plan["model"], size))] if adapter else []
        target = self.model if model is None else ("shapes" if model == "shapes" else model_source(model))
        request = GenerationRequest(prompt=PROMPT, model=target, scheduler=sampler, steps=steps,
                                    guidance_scale=7.0, width=size, height=size, seed=seed, adapters=adapters,
                                    step_cache=step_cache)
        self.registry.generate(request, on_step=clock.tick)
        return clock


class DiffusersSide:
    def __init__(self, plan):
        import torch

        self.plan = plan
        self.device = plan.get("device") or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = torch.float16 if self.device.startswith("cuda") else torch.float32  # diffusers' usual choice
        self.pipe = self.adapter_pipe = None

    def describe(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    def _load(self, model: str):
        import diffusers

        source = model_source(model)
        sdxl = "XL" in json.loads((Path(source) / "model_index.json").read_text())["_class_name"]
        cls = diffusers.StableDiffusionXLPipeline if sdxl else diffusers.StableDiffusionPipeline
        extra = {} if sdxl else {"safety_checker": None, "requires_safety_checker": False}
        pipe = cls.from_pretrained(source, dtype=self.dtype, local_files_only=True, **extra).to(self.device)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def load(self):
        self.pipe = self._load(self.plan["model"])
        self.base_scheduler = dict(self.pipe.scheduler.config)

    def _scheduler(self, sampler: str):
        """diffusers' own scheduler for the sampler: the studio's class for the diffusers-form ones; for the
        k-diffusion samplers the scheduler a diffusers user picks for that name (same steps, same schedule
        type where diffusers has it)."""
        import diffusers
        from pipelines.schedulers import SCHEDULERS

        equivalents = {"Euler a": ("EulerAncestralDiscreteScheduler", {}), "Euler": ("EulerDiscreteScheduler", {}),
                       "DPM++ 2M": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
                       "DPM++ 2M Karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True})}
        if sampler in equivalents:
            name, overrides = equivalents[sampler]
            return getattr(diffusers, name).from_config(self.base_scheduler, **overrides)
        spec = SCHEDULERS[sampler]
        if spec.cls is None:
            raise ValueError(f"bench: no diffusers counterpart chosen for {sampler!r}")
        return spec.cls.from_config(self.base_scheduler, **spec.overrides)

    def _adapter_pipe(self):
        import diffusers
        from diffusers import T2IAdapter

        if self.adapter_pipe is None:
            model = self.plan["model"]
            if model == "shapes":
                folder = Path(model_source("shapes")) / "adapters" / "sketch"
            else:
                from bench.models import build_adapter

                folder = build_adapter(model)
            adapter = T2IAdapter.from_pretrained(str(folder), dtype=self.dtype).to(self.device)
            xl = isinstance(self.pipe, diffusers.StableDiffusionXLPipeline)
            cls = diffusers.StableDiffusionXLAdapterPipeline if xl else diffusers.StableDiffusionAdapterPipeline
            names, _ = cls._get_signature_keys(cls)
            parts = {k: v for k, v in self.pipe.components.items() if k in names}
            extra = {} if xl else {"requires_safety_checker": False}
            self.adapter_pipe = cls(**parts, adapter=adapter, **extra)
            self.adapter_pipe.set_progress_bar_config(disable=True)
        return self.adapter_pipe

    def image(self, sampler: str, seed: int, adapter: bool = False, step_cache: int = 0, model: str | None = None):
        import torch

        if step_cache:
            raise ValueError("plain diffusers has no step cache")
        plan, clock = self.plan, StepClock()
        if model is not None:  # switching model: a diffusers user loads the other pipeline
            self.pipe, self.adapter_pipe = self._load(model), None
            self.base_scheduler = dict(self.pipe.scheduler.config)
        size, steps = (plan["size"], plan["steps"]) if model is None else (plan["switch_size"], plan["switch_steps"])
        pipe = self._adapter_pipe() if adapter else self.pipe
        pipe.scheduler = self._scheduler(sampler)
        kwargs = dict(num_inference_steps=steps, guidance_scale=7.0, width=size, height=size,
                      generator=torch.Generator("cpu").manual_seed(seed))
        if adapter:
            image = condition_map(plan["model"], size)
            kwargs.update(image=image.convert("L") if pipe.adapter.config.in_channels == 1 else image,
                          callback=clock.tick, callback_steps=1)
        else:
            kwargs["callback_on_step_end"] = clock.tick
        with torch.inference_mode():
            pipe(PROMPT, **kwargs)
        return clock


def timed(run) -> tuple[float, float | None]:
    started = time.perf_counter()
    clock = run()
    return time.perf_counter() - started, clock.steps_per_second()


def summary(samples: list[tuple[float, float | None]]) -> dict:
    seconds = [s for s, _ in samples]
    rates = [r for _, r in samples if r]
    return {"s_per_image": statistics.median(seconds), "steps_per_s": statistics.median(rates) if rates else None,
            "runs": [round(s, 3) for s in seconds]}


def peak_memory(device: str | None) -> dict:
    out = {"peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}  # Linux: KiB
    import torch

    if torch.cuda.is_available() and (device or "cuda").startswith("cuda"):
        out["cuda_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return out


def start(plan: dict) -> dict:
    """A process of one side's own: load, the first image, and the peak memory of doing so."""
    side = StudioSide(plan) if plan["side"] == "studio" else DiffusersSide(plan)
    result: dict = {"side": plan["side"], "model": plan["model"], "settings": side.describe()}
    started = time.perf_counter()
    side.load()
    result["load_s"] = time.perf_counter() - started
    result["first_image_s"] = timed(lambda: side.image(plan["samplers"][0], 0))[0]
    result.update(peak_memory(plan.get("device")))
    return result


def head_to_head(plan: dict) -> dict:
    """The speed figures, with the sides in `plan["sides"]` loaded in this one process and taking turns
    (the order alternates), so a busy machine slows both alike. Each side is warmed up first."""
    sides = {name: (StudioSide(plan) if name == "studio" else DiffusersSide(plan)) for name in plan["sides"]}
    out = {name: {"side": name, "model": plan["model"], "settings": side.describe(), "jobs": {}}
           for name, side in sides.items()}
    samplers, repeats = plan["samplers"], plan["repeats"]
    turn = [0]

    def each(names=None):
        names = list(names or sides)
        turn[0] += 1
        return names if turn[0] % 2 else names[::-1]

    for name in each():
        sides[name].load()
        sides[name].image(samplers[0], 0)
    samples: dict = {}

    def job(label, run, names=None, k_runs=repeats):
        for k in range(k_runs):
            for name in each(names):
                samples.setdefault((name, label), []).append(timed(lambda: run(sides[name], k)))
        for name in names or sides:
            out[name]["jobs"][label] = summary(samples[(name, label)])

    # every sampler repeated, or (big models on a CPU) only the first; the others then run once, as switches
    for sampler in samplers if plan.get("repeat_all_samplers", True) else samplers[:1]:
        job(f"txt2img {sampler}", lambda side, k, sampler=sampler: side.image(sampler, 1 + k))
    if len(samplers) > 1:  # the first image after a change of sampler: back and forth
        for name in sides:
            out[name]["switch_sampler_s"] = []
        for k in range(repeats):
            for sampler in (samplers[1], samplers[0]):
                for name in each():
                    out[name]["switch_sampler_s"].append(timed(lambda: sides[name].image(sampler, 50 + k))[0])
        for name in sides:
            out[name]["switch_sampler_s"] = statistics.median(out[name]["switch_sampler_s"])
    if "studio" in sides:
        for cache in plan.get("step_cache", []):
            job(f"txt2img {samplers[0]} +step cache {cache}",
                lambda side, k, cache=cache: side.image(samplers[0], 1 + k, step_cache=cache), names=["studio"])
    if plan.get("adapter"):
        for name in each():
            out[name]["switch_adapter_s"] = timed(lambda: sides[name].image(samplers[0], 0, adapter=True))[0]
        job(f"adapter {samplers[0]}", lambda side, k: side.image(samplers[0], 1 + k, adapter=True))
    if plan.get("switch_model"):
        for name in each():
            out[name]["switch_model_s"] = timed(lambda: sides[name].image(samplers[0], 0,
                                                                          model=plan["switch_model"]))[0]
    return out


def cold(plan: dict) -> None:
    """Process start to ready, then to the first image: prints a line as each is reached (the parent times
    them from the moment it started this process)."""
    side = DiffusersSide(plan)
    side.load()
    print("ready", flush=True)
    side.image(plan["samplers"][0], 0)
    print("image", flush=True)


def main(argv=None) -> int:
    plan = json.loads((argv or sys.argv[1:])[0])
    if plan.get("cold"):
        cold(plan)
        return 0
    print(json.dumps(start(plan) if plan.get("start") else head_to_head(plan)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Stage 3b: make CFG 7 a scale the samplers can take, as it is for Stable Diffusion, by distilling the UNet
into one whose guidance at 7 draws what the teacher's draws at 2 below the top of the schedule.

    python -m training.shapes.calibrate_guidance --teacher runs/shapes/unet5 --out runs/shapes/unet12
    (the five runs that made the committed weights: training/README.md)

Why: our captions name every attribute exactly, so the conditional denoiser alone pins the picture, and at
CFG 7 the guided denoiser answers a change of the latent far more steeply than the data ask
(`guidance_slope.py`): Euler and DPM++ 2M cope at 20 steps, LMS and PLMS diverged into saturated noise.
The teacher draws well with every sampler at CFG 7 above timestep 800 and CFG 2 below it.

Target, on noisy training latents: the student's guided output at `--at`, eps_u + at (eps_c - eps_u) from
its two branches, matches the teacher's at a guidance that is `--equivalent` below `--ramp`'s first timestep
and rises to `--at` at its second; the student's unconditional branch (empty caption) keeps the teacher's.
The student starts as the teacher (or `--student`), so above the ramp it has nothing to learn. Errors are
weighted 10x on the part of the latent that is not its per-channel mean: the mean (background colour) carries
most of the guidance's norm, and a plain MSE lets the student blur the shape's outline, which lives in the
rest. Min-SNR weighting all but ignores the lowest noise levels, where the stochastic samplers (DPM2 a, the
SDE ones) add fresh noise at every step; `--weight-floor` gives them a share.

`--trajectories` trains a `--trajectory-share` of each batch on the states the student's own samplers visit at
CFG `--at` (`trajectories.py`), redrawn from the EMA weights every `--refresh-every` steps: the stochastic
samplers left the training distribution between timesteps 800 and 300 and drew the wrong colour there."""
from __future__ import annotations

import argparse
import copy
import json
import pathlib
import random
import time

import torch

from .data import latent_pool, training_captions
from .train_unet import min_snr_weights
from .trajectories import parse_sampler, sampler_states


def structured_error(error: torch.Tensor, structure_weight: float) -> torch.Tensor:
    """Per-sample squared error, its per-channel mean part weighted 1 and the rest `structure_weight`."""
    mean = error.mean(dim=(2, 3), keepdim=True)
    return mean.pow(2).mean(dim=(1, 2, 3)) + structure_weight * (error - mean).pow(2).mean(dim=(1, 2, 3))


def matched_guidance(t: torch.Tensor, equivalent: float, at: float, ramp: tuple[float, float]) -> torch.Tensor:
    """The teacher's guidance scale the student's `at` must equal, per timestep: `equivalent` below the ramp,
    `at` above it, linear between."""
    rise = ((t.float() - ramp[0]) / (ramp[1] - ramp[0])).clamp(0, 1)
    return equivalent + (at - equivalent) * rise


def trajectory_pool(unet, encode, captions: list[str], empty, jobs: list[tuple[str, int]], guidance: float,
                    seed: int) -> dict:
    """Every state the samplers in `jobs` visit for `captions` (split evenly between them), flattened."""
    states, times, owners = [], [], []
    share = -(-len(captions) // len(jobs))
    for k, (sampler, steps) in enumerate(jobs):
        part = list(range(k * share, min(len(captions), (k + 1) * share)))
        x, t = sampler_states(unet, encode([captions[i] for i in part]), empty, sampler, steps, guidance,
                              seed + k)
        states.append(x.flatten(0, 1))
        times.append(t.flatten())
        owners += [i for i in part for _ in range(x.shape[1])]
    return {"states": torch.cat(states), "times": torch.cat(times), "captions": [captions[i] for i in owners]}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--teacher", default="runs/shapes/unet5", help="a run folder with unet/ (EMA weights)")
    parser.add_argument("--text-encoder", default="runs/shapes/text_encoder")
    parser.add_argument("--vae", default="runs/shapes/vae")
    parser.add_argument("--out", default="runs/shapes/unet12")
    parser.add_argument("--equivalent", type=float, default=2.0, help="the teacher's guidance below the ramp")
    parser.add_argument("--at", type=float, default=7.0, help="the student's guidance that matches it")
    parser.add_argument("--ramp", type=float, nargs=2, default=(700.0, 850.0), metavar=("FROM", "TO"),
                        help="timesteps over which the matched guidance rises from --equivalent to --at")
    parser.add_argument("--structure-weight", type=float, default=10.0)
    parser.add_argument("--uncond-weight", type=float, default=1.0)
    parser.add_argument("--student", help="a unet/ folder the student starts from (default: the teacher)")
    parser.add_argument("--weight-floor", type=float, default=0.0,
                        help="least loss weight per timestep (min-SNR weighting nearly ignores low noise)")
    parser.add_argument("--trajectories", nargs="*", default=[], metavar="SAMPLER:STEPS",
                        help="samplers whose own states (at CFG --at) make up part of each batch")
    parser.add_argument("--trajectory-share", type=float, default=0.5)
    parser.add_argument("--trajectory-count", type=int, default=192, help="trajectories per redraw")
    parser.add_argument("--refresh-every", type=int, default=200)
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--ema", type=float, default=0.995)
    parser.add_argument("--pool", type=int, default=24000)
    parser.add_argument("--anywhere", type=float, default=0.0,
                        help="share of the pool's scenes placed anywhere at any width (issue 17: drawings); "
                             "0, the grid and two sizes, made the committed weights")
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)

    from accelerate import Accelerator
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel

    from .architecture import SCHEDULER
    from .tokenizer import build_tokenizer

    accelerator = Accelerator()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    tokenizer = build_tokenizer()
    teacher = UNet2DConditionModel.from_pretrained(pathlib.Path(args.teacher) / "unet", dtype=torch.float32)
    teacher.requires_grad_(False).eval()
    student = (UNet2DConditionModel.from_pretrained(args.student, dtype=torch.float32) if args.student
               else copy.deepcopy(teacher)).train().requires_grad_(True)
    text_encoder = CLIPTextModel.from_pretrained(args.text_encoder, dtype=torch.float32).requires_grad_(False)
    if not (out / "text_encoder").exists():  # frozen; export reads it from the run folder
        text_encoder.save_pretrained(out / "text_encoder")
    noise_scheduler = DDPMScheduler.from_config(SCHEDULER)

    pool = latent_pool(out / "latents.pt", args.vae, args.pool, args.seed, anywhere=args.anywhere)
    scenes, latents = pool["scenes"], pool["latents"]
    optimizer = torch.optim.AdamW(student.parameters(), lr=args.lr, weight_decay=1e-2)
    ema = copy.deepcopy(student).eval().requires_grad_(False)
    start = 0
    state_file = out / "train_state.pt"
    if state_file.exists():
        state = torch.load(state_file, weights_only=False)
        student.load_state_dict(state["unet"])
        ema.load_state_dict(state["ema_unet"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["step"]
    student, teacher, optimizer = accelerator.prepare(student, teacher, optimizer)
    device = accelerator.device
    ema.to(device)
    text_encoder.to(device)
    rng = random.Random(args.seed * 1000 + start)
    generator = torch.Generator().manual_seed(args.seed * 1000 + start)

    def encode(captions):
        with torch.no_grad():
            ids = tokenizer(captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
            return text_encoder(ids.input_ids.to(device))[0]

    empty = encode([""])
    jobs = [parse_sampler(job) for job in args.trajectories]
    on_policy = round(args.trajectory_share * args.batch_size) if jobs else 0

    began, running = time.time(), 0.0
    for step in range(start, args.steps):
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, (step + 1) / 100)
        if on_policy and (step - start) % args.refresh_every == 0:
            drawn = random.Random(args.seed * 7919 + step).sample(range(len(scenes)), args.trajectory_count)
            visited = trajectory_pool(ema, encode, training_captions([scenes[i] for i in drawn], rng, p_empty=0.0),
                                      empty, jobs, args.at, args.seed * 7919 + step)
        index = torch.randint(0, len(latents), (args.batch_size - on_policy,), generator=generator)
        x0 = latents[index].to(device)
        captions = training_captions([scenes[i] for i in index.tolist()], rng, p_empty=0.0)
        t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (len(x0),), generator=generator)
        noisy = noise_scheduler.add_noise(x0, torch.randn(x0.shape, generator=generator).to(device), t)
        t = t.float()
        if on_policy:
            picked = torch.randint(0, len(visited["times"]), (on_policy,), generator=generator)
            noisy = torch.cat([noisy, visited["states"][picked].to(device)])
            t = torch.cat([t, visited["times"][picked]])
            captions += [visited["captions"][i] for i in picked.tolist()]
        t = t.to(device)
        with torch.no_grad():
            context = encode(captions)
            contexts = torch.cat([context, empty.expand_as(context)])
            eps_cond, eps_uncond = teacher(torch.cat([noisy, noisy]), torch.cat([t, t]),
                                           encoder_hidden_states=contexts).sample.chunk(2)
            matched = matched_guidance(t, args.equivalent, args.at, args.ramp).view(-1, 1, 1, 1)
            target = eps_uncond + matched * (eps_cond - eps_uncond)
        s_cond, s_uncond = student(torch.cat([noisy, noisy]), torch.cat([t, t]),
                                   encoder_hidden_states=contexts).sample.chunk(2)
        guided = s_uncond + args.at * (s_cond - s_uncond)
        # On the guided output itself, so the two branches' errors may cancel; scaled back to one branch's size.
        per_sample = (structured_error((guided - target) / args.at, args.structure_weight)
                      + args.uncond_weight * structured_error(s_uncond - eps_uncond, args.structure_weight))
        weights = min_snr_weights(noise_scheduler, t.cpu().round().long()).clamp(min=args.weight_floor)
        loss = (per_sample * weights.to(device)).mean()
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(student.parameters(), 1.0)
        optimizer.step()
        with torch.no_grad():
            decay = min(args.ema, (1 + step) / (10 + step))
            for e, p in zip(ema.parameters(), accelerator.unwrap_model(student).parameters()):
                e.lerp_(p, 1 - decay)
        running = 0.98 * running + 0.02 * loss.item() if step > start else loss.item()
        if step % 25 == 0:
            accelerator.print(f"step {step} loss {running:.5f} "
                              f"{(time.time() - began) / (step - start + 1):.2f}s/step", flush=True)
        if (step + 1) % args.checkpoint_every == 0 or step + 1 == args.steps:
            ema.save_pretrained(out / "unet")
            torch.save({"unet": accelerator.unwrap_model(student).state_dict(), "ema_unet": ema.state_dict(),
                        "optimizer": optimizer.state_dict(), "step": step + 1}, state_file.with_suffix(".tmp"))
            state_file.with_suffix(".tmp").replace(state_file)
            (out / "progress.json").write_text(json.dumps({"step": step + 1, "loss": running}))


if __name__ == "__main__":
    main()

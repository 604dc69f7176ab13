"""Train the shapes model's UNet on latents of the trained VAE, against the pre-trained text encoder.

    python -m training.shapes.train_unet --vae runs/shapes/vae --text-encoder runs/shapes/text_encoder \
        --out runs/shapes/unet [--steps 6000]

With --text-encoder (the recipe: see train_text.py) the encoder stays frozen; without it, a fresh one trains
together with the UNet (slow to learn words: kept for comparison).
Captions drop attributes at random and are empty 10% of the time (classifier-free guidance).
Loss: epsilon MSE with min-SNR weighting (gamma 5), which converges faster for small budgets.
Writes EMA weights as diffusers folders (unet/, text_encoder/) at every checkpoint; resumes from --out."""
from __future__ import annotations

import argparse
import copy
import json
import pathlib
import random
import time

import torch
import torch.nn.functional as F

from .data import latent_pool, training_captions


def min_snr_weights(scheduler, timesteps: torch.Tensor, gamma: float = 5.0) -> torch.Tensor:
    alphas = scheduler.alphas_cumprod[timesteps]
    snr = alphas / (1 - alphas)
    return torch.clamp(snr, max=gamma) / snr


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--vae", default="runs/shapes/vae")
    parser.add_argument("--out", default="runs/shapes/unet")
    parser.add_argument("--text-encoder", help="a pre-trained CLIPTextModel folder, used frozen")
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=8e-4)
    parser.add_argument("--ema", type=float, default=0.998)
    parser.add_argument("--offset-noise", type=float, default=0.15)
    parser.add_argument("--high-noise-share", type=float, default=0.3,
                        help="share of timesteps drawn near the top of the schedule, where the prompt alone "
                             "decides the picture")
    parser.add_argument("--pool", type=int, default=24000)
    parser.add_argument("--anywhere", type=float, default=0.0,
                        help="share of the pool's scenes placed anywhere at any width (issue 17: drawings); "
                             "0, the grid and two sizes, made the committed weights")
    parser.add_argument("--checkpoint-every", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--init-from", help="a model folder (e.g. assets/shapes) whose unet/ and text_encoder/ "
                        "start the run, to continue training the committed model with a fresh optimizer")
    args = parser.parse_args(argv)

    from accelerate import Accelerator
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel

    from .architecture import SCHEDULER, build_components
    from .tokenizer import build_tokenizer

    accelerator = Accelerator()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    tokenizer = build_tokenizer()
    components = build_components(tokenizer, seed=args.seed)
    unet, text_encoder = components["unet"], components["text_encoder"]
    if args.init_from:
        unet = UNet2DConditionModel.from_pretrained(pathlib.Path(args.init_from) / "unet", dtype=torch.float32)
        text_encoder = CLIPTextModel.from_pretrained(pathlib.Path(args.init_from) / "text_encoder",
                                                     dtype=torch.float32)
    if args.text_encoder:
        text_encoder = CLIPTextModel.from_pretrained(args.text_encoder, dtype=torch.float32)
    text_encoder.requires_grad_(not args.text_encoder)
    noise_scheduler = DDPMScheduler.from_config(SCHEDULER)

    pool = latent_pool(out / "latents.pt", args.vae, args.pool, args.seed, anywhere=args.anywhere)
    scenes, latents = pool["scenes"], pool["latents"]
    accelerator.print(f"latents {tuple(latents.shape)} std {latents.std():.3f}")

    params = list(unet.parameters()) + ([] if args.text_encoder else list(text_encoder.parameters()))
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-2)
    ema_unet = copy.deepcopy(unet).eval()
    # A frozen encoder's average is itself: no copy, and no per-step update.
    ema_text = text_encoder if args.text_encoder else copy.deepcopy(text_encoder).eval()
    averaged = [(ema_unet, unet)] + ([] if args.text_encoder else [(ema_text, text_encoder)])
    start = 0
    state_file = out / "train_state.pt"
    if state_file.exists():
        state = torch.load(state_file, weights_only=False)
        unet.load_state_dict(state["unet"]); text_encoder.load_state_dict(state["text_encoder"])
        ema_unet.load_state_dict(state["ema_unet"]); ema_text.load_state_dict(state["ema_text"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["step"]
    unet, text_encoder, optimizer = accelerator.prepare(unet, text_encoder, optimizer)
    for ema_model, _ in averaged:  # updated from the prepared models' parameters, so on their device
        ema_model.to(accelerator.device)
    rng = random.Random(args.seed * 1000 + start)
    generator = torch.Generator().manual_seed(args.seed * 1000 + start)
    warmup = 200

    def lr_at(step):
        progress = step / args.steps
        return args.lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + torch.cos(torch.tensor(progress * 3.14159)).item()))

    began, running = time.time(), 0.0
    for step in range(start, args.steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        index = torch.randint(0, len(latents), (args.batch_size,), generator=generator)
        x0 = latents[index].to(accelerator.device)
        captions = training_captions([scenes[i] for i in index.tolist()], rng)
        ids = tokenizer(captions, padding="max_length", max_length=77, truncation=True,
                        return_tensors="pt").input_ids.to(accelerator.device)
        noise = torch.randn(x0.shape, generator=generator)
        # Offset noise: a per-image, per-channel constant in the noise hides the latent's mean colour, which
        # otherwise shows through all but the highest noise levels; without it the UNet reads the background
        # from the noise instead of the prompt and draws it at chance.
        noise = (noise + args.offset_noise * torch.randn(x0.shape[:2] + (1, 1), generator=generator))
        noise = noise.to(accelerator.device)
        t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (len(x0),), generator=generator)
        high = torch.rand(len(x0), generator=generator) < args.high_noise_share
        t = torch.where(high, noise_scheduler.config.num_train_timesteps - 1 - (t * torch.rand(len(x0),
                        generator=generator) ** 2).long(), t)
        noisy = noise_scheduler.add_noise(x0, noise, t)
        with torch.set_grad_enabled(not args.text_encoder):
            context = text_encoder(ids)[0]
        prediction = unet(noisy, t.to(accelerator.device), encoder_hidden_states=context).sample
        per_sample = F.mse_loss(prediction, noise, reduction="none").mean(dim=(1, 2, 3))
        loss = (per_sample * min_snr_weights(noise_scheduler, t).to(per_sample.device)).mean()
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(params, 1.0)
        optimizer.step()
        with torch.no_grad():
            decay = min(args.ema, (1 + step) / (10 + step))
            for ema_model, model in averaged:
                for e, p in zip(ema_model.parameters(), accelerator.unwrap_model(model).parameters()):
                    e.lerp_(p, 1 - decay)
        running = 0.98 * running + 0.02 * loss.item() if step > start else loss.item()
        if step % 25 == 0:
            accelerator.print(f"step {step} loss {running:.4f} lr {lr_at(step):.2e} "
                              f"{(time.time() - began) / (step - start + 1):.2f}s/step", flush=True)
        if (step + 1) % args.checkpoint_every == 0 or step + 1 == args.steps:
            ema_unet.save_pretrained(out / "unet")
            ema_text.save_pretrained(out / "text_encoder")
            torch.save({"unet": accelerator.unwrap_model(unet).state_dict(),
                        "text_encoder": accelerator.unwrap_model(text_encoder).state_dict(),
                        "ema_unet": ema_unet.state_dict(), "ema_text": ema_text.state_dict(),
                        "optimizer": optimizer.state_dict(), "step": step + 1}, state_file.with_suffix(".tmp"))
            state_file.with_suffix(".tmp").replace(state_file)
            (out / "progress.json").write_text(json.dumps({"step": step + 1, "loss": running}))


if __name__ == "__main__":
    main()

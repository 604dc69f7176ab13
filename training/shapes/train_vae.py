"""Train the shapes model's VAE (AutoencoderKL, 8x down, 4 latent channels).

    python -m training.shapes.train_vae --out runs/shapes/vae [--steps 3000]

Resumes from --out when it holds a checkpoint. Uses accelerate, so it runs unchanged on a GPU."""
from __future__ import annotations

import argparse
import json
import pathlib
import random

import torch
import torch.nn.functional as F

from .data import render_pool, uint8_to_unit


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="runs/shapes/vae")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--crop", type=int, default=64, help="random crops, aligned to the 8-pixel latent grid")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--kl-weight", type=float, default=1e-6)
    parser.add_argument("--pool", type=int, default=6000)
    parser.add_argument("--shape-weight", type=float, default=5.0, help="loss weight on and around the shape")
    parser.add_argument("--checkpoint-every", type=int, default=250)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    from accelerate import Accelerator
    from diffusers import AutoencoderKL

    from .architecture import VAE

    accelerator = Accelerator()
    out = pathlib.Path(args.out)
    state_file = out / "train_state.pt"
    torch.manual_seed(args.seed)
    vae = AutoencoderKL.from_pretrained(out) if (out / "config.json").exists() else AutoencoderKL(**VAE)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=args.lr, weight_decay=0.0)
    start = 0
    if state_file.exists():
        state = torch.load(state_file, weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        start = state["step"]
    vae, optimizer = accelerator.prepare(vae, optimizer)
    _, images, _, centres = render_pool(args.pool, seed=args.seed, with_centres=True)
    generator = torch.Generator().manual_seed(args.seed + start)
    schedule = lambda step: args.lr * min(1.0, (step + 1) / 100) * (0.1 + 0.9 * (1 - step / args.steps))

    for step in range(start, args.steps):
        for group in optimizer.param_groups:
            group["lr"] = schedule(step)
        index = torch.randint(0, len(images), (args.batch_size,), generator=generator)
        x = uint8_to_unit(_crop(images[index], centres[index], args.crop, generator)).to(accelerator.device)
        weight = _shape_weight(x, args.shape_weight)
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample()).sample
        error = (recon - x).abs() + (recon - x) ** 2
        loss = (error * weight).sum() / (weight.sum() * 3) + args.kl_weight * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        optimizer.step()
        if step % 50 == 0:
            accelerator.print(f"step {step} loss {loss.item():.4f}", flush=True)
        if (step + 1) % args.checkpoint_every == 0 or step + 1 == args.steps:
            _save(accelerator, vae, optimizer, out, step + 1, images)


def _shape_weight(x, shape_weight):
    """Shapes cover a small part of each image; without extra weight their colour and points come out
    wrong while the plain background is perfect. Pixels unlike the image's corner, dilated by 3 px."""
    corner = x[:, :, :1, :1]
    shape = ((x - corner).abs().sum(dim=1, keepdim=True) > 0.15).float()
    shape = F.max_pool2d(shape, kernel_size=7, stride=1, padding=3)
    return 1.0 + (shape_weight - 1.0) * shape


def _crop(batch, centres, size, generator):
    """The VAE is fully convolutional (no mid-block attention), so crops teach it whole images, cheaper.
    Half the crops are centred on the shape (else most crops would be plain background); all are aligned
    to the 8-pixel latent grid."""
    full = batch.shape[-1]
    if size >= full:
        return batch
    cells = (full - size) // 8
    crops = []
    for image, (cx, cy) in zip(batch, centres.tolist()):
        if torch.rand((), generator=generator) < 0.5:
            x, y = (min(max(int(round((c - size / 2) / 8)), 0), cells) * 8 for c in (cx, cy))
        else:
            x, y = (int(v) * 8 for v in torch.randint(0, cells + 1, (2,), generator=generator))
        crops.append(image[:, y:y + size, x:x + size])
    return torch.stack(crops)


def _save(accelerator, vae, optimizer, out, step, images):
    model = accelerator.unwrap_model(vae)
    with torch.no_grad():  # scaling_factor makes latents unit variance, as SD's 0.18215 does
        sample = uint8_to_unit(images[:256]).to(accelerator.device)
        std = model.encode(sample).latent_dist.mean.std().item()
    model.register_to_config(scaling_factor=round(1.0 / std, 5))
    model.save_pretrained(out)
    torch.save({"optimizer": optimizer.state_dict(), "step": step}, out / "train_state.pt")
    (out / "progress.json").write_text(json.dumps({"step": step, "scaling_factor": 1.0 / std}))


if __name__ == "__main__":
    main()

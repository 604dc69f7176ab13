"""Train one T2I-Adapter (sketch, edge or depth) against the frozen shapes text encoder and UNet.

    python -m training.shapes.train_adapter --kind sketch --model runs/shapes/unet --vae runs/shapes/vae \
        --out runs/shapes/adapters/sketch [--steps 600]

30% of captions name a wrong position, so the adapter learns that the drawn condition wins over the text.
Timesteps are drawn with a cubic bias towards high noise, where layout is decided (as in the T2I-Adapter paper).
`--drawings 0.75` draws that share of the pool as people draw (pipelines/shapes/drawings.py: other strokes and
styles, anywhere in the frame, any size), the scene rendered where it is drawn; `--init-from` starts from a
trained adapter (fine-tuning the committed one: `--init-from assets/shapes/adapters/KIND`)."""
from __future__ import annotations

import argparse
import json
import pathlib
import random
import time

import torch
import torch.nn.functional as F

from .data import latent_pool, training_captions


@torch.no_grad()
def scale_residuals(adapter, factor: float) -> None:
    """Make every residual the adapter returns `factor` times larger, exactly: the network is convolutions,
    ReLUs and average pooling, so scaling the first convolution (weights and bias) and every later bias
    scales each block's output (ReLU(a x) = a ReLU(x) for a > 0)."""
    first = adapter.adapter.conv_in
    first.weight.mul_(factor)
    for module in adapter.modules():
        if isinstance(module, torch.nn.Conv2d) and module.bias is not None:
            module.bias.mul_(factor)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", required=True, choices=("sketch", "edge", "depth"))
    parser.add_argument("--model", default="runs/shapes/unet", help="folder with unet/ and text_encoder/")
    parser.add_argument("--vae", default="runs/shapes/vae")
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--pool", type=int, default=6000)
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--drawings", type=float, default=0.0, help="share of the pool drawn as people draw")
    parser.add_argument("--init-from", help="a T2IAdapter folder to start from")
    parser.add_argument("--init-scale", type=float, default=1.0,
                        help="start from the --init-from adapter's residuals times this (as if run at this weight)")
    args = parser.parse_args(argv)

    from accelerate import Accelerator
    from diffusers import DDPMScheduler, T2IAdapter, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    from .architecture import ADAPTER, SCHEDULER
    from .tokenizer import build_tokenizer

    accelerator = Accelerator()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    model = pathlib.Path(args.model)
    # The model folder's own tokenizer when it has one (an exported model), else the grammar's (a run).
    tokenizer = CLIPTokenizer.from_pretrained(model / "tokenizer") if (model / "tokenizer").exists() else build_tokenizer()
    f32 = dict(dtype=torch.float32)
    unet = UNet2DConditionModel.from_pretrained(model / "unet", **f32).eval().requires_grad_(False)
    text_encoder = CLIPTextModel.from_pretrained(model / "text_encoder", **f32).eval().requires_grad_(False)
    noise_scheduler = DDPMScheduler.from_config(SCHEDULER)
    pool = latent_pool(out / "pool.pt", args.vae, args.pool, args.seed, conditions=(args.kind,), drawings=args.drawings)
    scenes, latents, maps = pool["scenes"], pool["latents"], pool["maps"][args.kind]

    adapter = T2IAdapter.from_pretrained(args.init_from, **f32) if args.init_from else T2IAdapter(**ADAPTER)
    if args.init_scale != 1.0:
        scale_residuals(adapter, args.init_scale)
    optimizer = torch.optim.AdamW(adapter.parameters(), lr=args.lr, weight_decay=1e-2)
    start, state_file = 0, out / "train_state.pt"
    if state_file.exists():
        state = torch.load(state_file, weights_only=False)
        adapter.load_state_dict(state["adapter"]); optimizer.load_state_dict(state["optimizer"])
        start = state["step"]
    adapter, optimizer = accelerator.prepare(adapter, optimizer)
    unet.to(accelerator.device); text_encoder.to(accelerator.device)
    rng = random.Random(args.seed * 1000 + start)
    generator = torch.Generator().manual_seed(args.seed * 1000 + start)
    began, running = time.time(), 0.0
    for step in range(start, args.steps):
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, (step + 1) / 50)
        index = torch.randint(0, len(latents), (args.batch_size,), generator=generator)
        x0 = latents[index].to(accelerator.device)
        condition = (maps[index].float() / 255.0).to(accelerator.device)  # as the adapter pipeline feeds it
        captions = training_captions([scenes[i] for i in index.tolist()], rng, p_wrong_position=0.3)
        ids = tokenizer(captions, padding="max_length", max_length=77, truncation=True,
                        return_tensors="pt").input_ids.to(accelerator.device)
        noise = torch.randn(x0.shape, generator=generator).to(accelerator.device)
        u = torch.rand(len(x0), generator=generator)
        t = ((1 - u ** 3) * noise_scheduler.config.num_train_timesteps).long().clamp(0, 999)
        noisy = noise_scheduler.add_noise(x0, noise, t)
        with torch.no_grad():
            context = text_encoder(ids)[0]
        residuals = adapter(condition)
        prediction = unet(noisy, t.to(accelerator.device), encoder_hidden_states=context,
                          down_intrablock_additional_residuals=list(residuals)).sample
        loss = F.mse_loss(prediction, noise)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        optimizer.step()
        running = 0.98 * running + 0.02 * loss.item() if step > start else loss.item()
        if step % 25 == 0:
            accelerator.print(f"{args.kind} step {step} loss {running:.4f} "
                              f"{(time.time() - began) / (step - start + 1):.2f}s/step", flush=True)
        if (step + 1) % args.checkpoint_every == 0 or step + 1 == args.steps:
            accelerator.unwrap_model(adapter).save_pretrained(out)
            torch.save({"adapter": accelerator.unwrap_model(adapter).state_dict(),
                        "optimizer": optimizer.state_dict(), "step": step + 1}, state_file.with_suffix(".tmp"))
            state_file.with_suffix(".tmp").replace(state_file)
            (out / "progress.json").write_text(json.dumps({"step": step + 1, "loss": running}))


if __name__ == "__main__":
    main()

"""Pre-train the shapes model's text encoder to read captions, before the UNet ever sees it.

    python -m training.shapes.train_text --out runs/shapes/text_encoder [--steps 600]

A CLIPTextModel learned from scratch together with the UNet binds words slowly: the only signal is the
denoising loss, and a colour word means "shape" or "background" depending on the words after it. Here the
encoder is taught directly: linear heads read every attribute of the caption (or "not mentioned") from each
hidden state at and after the end-of-text token — the states that have seen the whole caption under CLIP's
causal mask and that make up most of the 77 the UNet cross-attends to. The heads are thrown away; the UNet
then trains against this encoder, frozen. Captions of held-out scenes measure the accuracy."""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import random
import time

import torch
import torch.nn.functional as F

from pipelines.shapes.world import (ATTRIBUTES, COLORS, POSITIONS, SHAPES, SIZES, all_scenes, caption,
                                    is_held_out, random_keep, training_scene)

VALUES = {"shape": list(SHAPES), "color": list(COLORS), "background": list(COLORS), "size": list(SIZES),
          "position": list(POSITIONS)}


def caption_batch(scenes, rng: random.Random, p_empty: float = 0.1):
    """Captions and their targets: per attribute, 0 for "not mentioned", else 1 + the value's index."""
    captions, targets = [], []
    for scene in scenes:
        keep = frozenset() if rng.random() < p_empty else random_keep(rng)
        captions.append(caption(scene, rng, keep) if keep else "")
        targets.append([1 + VALUES[a].index(getattr(scene, a)) if a in keep else 0 for a in ATTRIBUTES])
    return captions, torch.tensor(targets)


def after_end_of_text(ids: torch.Tensor, eos_id: int) -> torch.Tensor:
    """Mask of the positions at or after the first end-of-text token."""
    return torch.cumsum((ids == eos_id).int(), dim=1) > 0


def head_logits(heads, hidden: torch.Tensor) -> dict[str, torch.Tensor]:
    return {a: heads[a](hidden) for a in ATTRIBUTES}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="runs/shapes/text_encoder")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args(argv)

    from accelerate import Accelerator

    from .architecture import build_components
    from .tokenizer import build_tokenizer

    accelerator = Accelerator()
    torch.manual_seed(args.seed)
    tokenizer = build_tokenizer()
    text_encoder = build_components(tokenizer, seed=args.seed)["text_encoder"]
    width = text_encoder.config.hidden_size
    heads = torch.nn.ModuleDict({a: torch.nn.Linear(width, 1 + len(VALUES[a])) for a in ATTRIBUTES})
    optimizer = torch.optim.AdamW(list(text_encoder.parameters()) + list(heads.parameters()), lr=args.lr,
                                  weight_decay=1e-2)
    text_encoder, heads, optimizer = accelerator.prepare(text_encoder, heads, optimizer)
    rng = random.Random(args.seed)
    held_out = [s for s in all_scenes() if is_held_out(s)]
    tokenize = lambda captions: tokenizer(captions, padding="max_length", max_length=77, truncation=True,
                                          return_tensors="pt").input_ids.to(accelerator.device)

    def accuracy(count: int = 512) -> dict[str, float]:
        check_rng = random.Random(99)
        captions, targets = caption_batch([check_rng.choice(held_out) for _ in range(count)], check_rng)
        ids = tokenize(captions)
        with torch.no_grad():
            hidden = text_encoder(ids)[0]
            mask = after_end_of_text(ids, tokenizer.eos_token_id)
            logits = head_logits(heads, hidden)
        targets = targets.to(hidden.device)
        # Every state after the end of text must be right, not just one: the UNet may attend to any.
        return {a: float((logits[a].argmax(-1) == targets[:, k:k + 1])[mask].float().mean())
                for k, a in enumerate(ATTRIBUTES)}

    began = time.time()
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        captions, targets = caption_batch([training_scene(rng) for _ in range(args.batch_size)], rng)
        ids = tokenize(captions)
        hidden = text_encoder(ids)[0]
        mask = after_end_of_text(ids, tokenizer.eos_token_id)
        logits = head_logits(heads, hidden)
        targets = targets.to(hidden.device)
        loss = sum(F.cross_entropy(logits[a][mask], targets[:, k:k + 1].expand_as(mask)[mask])
                   for k, a in enumerate(ATTRIBUTES))
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        optimizer.step()
        if step % 100 == 0 or step + 1 == args.steps:
            accelerator.print(f"step {step} loss {loss.item():.4f} held-out accuracy "
                              f"{json.dumps({a: round(v, 3) for a, v in accuracy().items()})} "
                              f"{(time.time() - began) / (step + 1):.2f}s/step", flush=True)
    out = pathlib.Path(args.out)
    accelerator.unwrap_model(text_encoder).save_pretrained(out)
    (out / "accuracy.json").write_text(json.dumps(accuracy(2048), indent=2))
    accelerator.print(f"saved {out}: held-out accuracy {(out / 'accuracy.json').read_text()}")


if __name__ == "__main__":
    main()

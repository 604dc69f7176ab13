"""Teach the shapes model's text encoder every reasonable phrasing, without touching the UNet or adapters.

    python -m training.shapes.distill_text --teacher runs/shapes/text_encoder --out runs/shapes/text17 [--steps 1800]
    python -m training.shapes.distill_text --install runs/shapes/text17 --into assets/shapes

The committed text encoder reads the caption grammar (world.caption) only. A student (the same CLIPTextModel
geometry, started from the teacher's weights, with the phrasing tokenizer's larger vocabulary) is trained to
give, for a description through one of the training templates (pipelines/shapes/phrasing.py), the hidden
states the teacher (the grammar's text encoder, stage 2) gives for one grammar caption (`canonical`) of the
same scene mentioning the same attributes. For grammar
captions, the empty prompt and any other text (made-up words such as DreamBooth's "sks") its target is the
teacher's own answer, so whatever worked before reads as before. The UNet, the adapters and the guidance
calibration then see what they were trained on, whatever the phrasing.

Under CLIP's causal mask only the states at and after the end-of-text token have read the whole text; most
of the 77 states the UNet attends to are there. The states before it, in another word order, cannot match
the grammar caption's position by position. A word that names a value (a colour, size, shape, place, or
"background") is taught the teacher's state at the same value's word in the grammar caption (`word_targets`),
with `--word-weight`: A1111's prompt weights scale a word's state, so that state must say what the grammar's
says for the weight to act as it does on grammar captions. The other states before the end of text (small words)
weigh `--early-weight` toward the caption's state at their position. Held-out templates (never trained on)
measure the student, on held-out scenes, as the mean squared error of the states after the end of text."""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import random
import string
import time

import torch

from pipelines.shapes.phrasing import (HELD_OUT_TEMPLATES, TRAINING_TEMPLATES, WORDS, describe,
                                       training_description)
from pipelines.shapes.world import (ATTRIBUTES, COLORS, SHAPES, SIZES, all_scenes, caption, is_held_out, random_keep,
                                    training_scene)

_PLACE = {"center": "in the center", "left": "on the left", "right": "on the right", "top": "at the top",
          "bottom": "at the bottom"}


def canonical(scene, keep: frozenset[str] | None = None) -> str:
    """The one grammar caption (world.caption's first style, fixed phrases) a description is taught to read as:
    "a large red circle in the top left on a blue background", saying only the attributes in `keep`."""
    keep = frozenset(ATTRIBUTES) if keep is None else keep
    words = ["a"] + [getattr(scene, a) for a in ("size", "color") if a in keep]
    text = " ".join(words + [scene.shape if "shape" in keep else "shape"])
    if "position" in keep:
        text += " " + _PLACE.get(scene.position, f"in the {scene.position}")
    if "background" in keep:
        text += f" on a {scene.background} background"
    return text


def other_text(rng: random.Random) -> str:
    """Text outside the world's descriptions: made-up words (a DreamBooth trigger), alone or in a caption."""
    word = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 6)))
    return rng.choice((f"a {word} shape", word, f"a {word} {rng.choice(SHAPES)}", f"{word} shape",
                       f"a photo of {word}", "a sks shape", "a shape", "shape"))


def contradicting_text(rng: random.Random) -> str:
    """The grammar's words saying no one scene: a shape given two colours ("a circle, blue, red", "a red blue
    square"). A user who writes that weighs one colour against the other with A1111's weights; the student
    reads it as the teacher does, so the weights act on it as they did. Red with blue is never said: the
    studio's prompt-weight test (tests/test_prompt_generation.py) weighs those two, on text never trained on."""
    first, second = rng.sample(list(COLORS), 2)
    while {first, second} == {"red", "blue"}:
        first, second = rng.sample(list(COLORS), 2)
    shape = rng.choice(SHAPES + ("shape",))
    size = rng.choice(("", "") + tuple(f"{size} " for size in SIZES))
    text = rng.choice((f"a {size}{shape}, {first}, {second}", f"a {size}{first} {shape}, {second}",
                       f"a {size}{first} {second} {shape}", f"{shape}, {first}, {second}",
                       f"a {shape}, {first} {second}", f"{first}, {second}, {size}{shape}"))
    if rng.random() < 0.3:
        text += f" on a {rng.choice([c for c in COLORS if c not in (first, second)])} background"
    return text


def batch(scenes, rng: random.Random, composed=0.5, p_grammar=0.3, p_empty=0.05, p_other=0.05,
          p_contradicting=0.05):
    """(student texts, teacher texts): a description and a grammar caption of the same scene and attributes;
    or the same text for both (grammar captions, the empty prompt, other text, contradicting colours)."""
    student, teacher = [], []
    for scene in scenes:
        keep = random_keep(rng)
        draw = rng.random()
        if draw < p_empty:
            pair = ("", "")
        elif draw < p_empty + p_other:
            text = other_text(rng)
            pair = (text, text)
        elif draw < p_empty + p_other + p_contradicting:
            text = contradicting_text(rng)
            pair = (text, text)
        elif draw < p_empty + p_other + p_contradicting + p_grammar:
            text = caption(scene, rng, keep)
            pair = (text, text)
        else:
            pair = (training_description(scene, rng, keep, composed), canonical(scene, keep))
        student.append(pair[0])
        teacher.append(pair[1])
    return student, teacher


# A word of a description and the grammar's word for the same value ("violet" is "purple", "upper" is "top").
_VALUE_WORD = {said: value for value, words in WORDS.items() for said in words}
_VALUE_WORD.update({"upper": "top", "lower": "bottom", "centre": "center", "middle": "center"})
_VALUE_WORDS = {*SIZES, *COLORS, *SHAPES, "shape", "background", "top", "bottom", "left", "right", "center"}


def word_targets(student_tokens: list[str], teacher_tokens: list[str]) -> list[int | None]:
    """For each student token, the index of the teacher token naming the same value (None: a small word, or a
    value the caption does not say). Shape and background colours differ in every scene, so a colour word
    finds its own; a value said twice in the caption takes its occurrences in order."""
    def value(token: str) -> str:
        word = token.removesuffix("</w>")
        return _VALUE_WORD.get(word, word)

    free: dict[str, list[int]] = {}
    for index, token in enumerate(teacher_tokens):
        if value(token) in _VALUE_WORDS:
            free.setdefault(value(token), []).append(index)
    out: list[int | None] = []
    for token in student_tokens:
        places = free.get(value(token))
        out.append(places.pop(0) if places else None)
    return out


def student_from(teacher, tokenizer, teacher_tokenizer, layers: int | None = None):
    """The teacher's weights in a CLIPTextModel for the new vocabulary: known tokens keep their embedding,
    new ones start as the mean of their characters' embeddings. `layers` beyond the teacher's repeat its last."""
    import copy

    from transformers import CLIPTextModel

    config = copy.deepcopy(teacher.config)
    config.vocab_size = len(tokenizer)
    config.bos_token_id, config.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
    config.pad_token_id = tokenizer.pad_token_id
    config.num_hidden_layers = layers or teacher.config.num_hidden_layers
    student = CLIPTextModel(config)
    state = {k: v for k, v in teacher.state_dict().items() if "token_embedding" not in k}
    extra = config.num_hidden_layers - teacher.config.num_hidden_layers
    if extra > 0:
        last = teacher.config.num_hidden_layers - 1
        for key, value in list(state.items()):
            if f"layers.{last}." in key:
                for k in range(extra):
                    state[key.replace(f"layers.{last}.", f"layers.{last + 1 + k}.")] = value.clone()
    student.load_state_dict(state, strict=False)
    old = teacher.get_input_embeddings().weight.detach()
    old_vocab = teacher_tokenizer.get_vocab()
    new = student.get_input_embeddings().weight.data
    for token, index in tokenizer.get_vocab().items():
        if token in old_vocab:
            new[index] = old[old_vocab[token]]
            continue
        pieces = [c for c in token.removesuffix("</w>")]
        ids = [old_vocab[c] for c in pieces[:-1]] + [old_vocab.get(pieces[-1] + "</w>" if token.endswith("</w>")
                                                                   else pieces[-1], old_vocab[pieces[-1]])]
        new[index] = old[ids].mean(0)
    return student


def states(model, tokenizer, texts, device):
    ids = tokenizer(texts, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    ids = ids.to(device)
    return model(ids)[0], ids


def after_end(ids: torch.Tensor, eos_id: int) -> torch.Tensor:
    return torch.cumsum((ids == eos_id).int(), dim=1) > 0


def install(run: pathlib.Path, model: pathlib.Path):
    """The student (fp16, as the rest of the bundled model) and the phrasing tokenizer into the model folder
    `model`. Its token vectors are laid out by token for `build_phrasing_tokenizer`, so the ids of any text
    the grammar's tokenizer could read are the same in both (a trainer that reads the grammar's tokenizer
    still gets the grammar's answers)."""
    from transformers import CLIPTextModel, CLIPTokenizer

    from .export import save_tokenizer
    from .tokenizer import build_phrasing_tokenizer

    student = CLIPTextModel.from_pretrained(run / "text_encoder", dtype=torch.float32)
    trained = CLIPTokenizer.from_pretrained(run / "tokenizer").get_vocab()
    tokenizer = build_phrasing_tokenizer()
    if set(trained) != set(tokenizer.get_vocab()):
        raise SystemExit(f"{run}: its tokenizer is not build_phrasing_tokenizer()'s vocabulary")
    vectors = student.get_input_embeddings().weight.data
    order = [trained[token] for token, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])]
    vectors.copy_(vectors[order].clone())
    student.config.bos_token_id, student.config.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
    student.config.pad_token_id = tokenizer.pad_token_id
    student.to(torch.float16).save_pretrained(model / "text_encoder", safe_serialization=True)
    save_tokenizer(tokenizer, model / "tokenizer")


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--install", help="a finished run: copy its student and tokenizer --into a model folder")
    parser.add_argument("--into", default="assets/shapes")
    parser.add_argument("--teacher", default="runs/shapes/text_encoder",
                        help="the caption grammar's text encoder (stage 2; the UNet was trained on it)")
    parser.add_argument("--out", default="runs/shapes/text17")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--early-weight", type=float, default=0.25)
    parser.add_argument("--word-weight", type=float, default=1.0,
                        help="weight of a value word's state toward the grammar caption's state for that value")
    parser.add_argument("--init-from", help="start the student from this run's text_encoder (its tokenizer is "
                                            "build_phrasing_tokenizer()'s, as every run's)")
    parser.add_argument("--contradicting", type=float, default=0.05,
                        help="share of texts giving a shape two colours, read as the teacher reads them")
    parser.add_argument("--composed", type=float, default=0.5,
                        help="share of training descriptions in composed frames (phrasing.composed_template)")
    parser.add_argument("--layers", type=int, default=None, help="student layers (default: the teacher's)")
    parser.add_argument("--checkpoint-every", type=int, default=250)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args(argv)
    if args.install:
        return install(pathlib.Path(args.install), pathlib.Path(args.into))

    from accelerate import Accelerator
    from transformers import CLIPTextModel

    from .tokenizer import build_phrasing_tokenizer, build_tokenizer

    accelerator = Accelerator()
    device = accelerator.device
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    teacher = CLIPTextModel.from_pretrained(args.teacher, dtype=torch.float32).eval().requires_grad_(False)
    teacher_tokenizer = build_tokenizer()
    if teacher.config.vocab_size != len(teacher_tokenizer):
        parser.error(f"--teacher {args.teacher} reads {teacher.config.vocab_size} tokens, not the caption grammar's "
                     f"{len(teacher_tokenizer)}: give the grammar's text encoder (a student cannot teach)")
    tokenizer = build_phrasing_tokenizer()
    if args.init_from:
        student = CLIPTextModel.from_pretrained(pathlib.Path(args.init_from) / "text_encoder", dtype=torch.float32)
        if student.config.vocab_size != len(tokenizer):
            parser.error(f"--init-from {args.init_from} reads {student.config.vocab_size} tokens, not the phrasing "
                         f"tokenizer's {len(tokenizer)}")
    else:
        student = student_from(teacher, tokenizer, teacher_tokenizer, args.layers)
    optimizer = torch.optim.AdamW(student.parameters(), lr=args.lr, weight_decay=1e-2)
    start, state_file = 0, out / "train_state.pt"
    if state_file.exists():
        saved = torch.load(state_file, weights_only=False)
        student.load_state_dict(saved["student"])
        optimizer.load_state_dict(saved["optimizer"])
        start = saved["step"]
    student, optimizer = accelerator.prepare(student, optimizer)
    teacher.to(device)
    held_out_scenes = [s for s in all_scenes() if is_held_out(s)]

    def loss_of(student_texts, teacher_texts, early_weight, word_weight=0.0):
        with torch.no_grad():
            target, teacher_ids = states(teacher, teacher_tokenizer, teacher_texts, device)
        hidden, ids = states(student, tokenizer, student_texts, device)
        weight = torch.where(after_end(ids, tokenizer.eos_token_id), 1.0, early_weight)
        source = torch.arange(ids.shape[1], device=device).repeat(len(ids), 1)  # the teacher state each matches
        for row, (mine, theirs) in enumerate(zip(student_texts, teacher_texts)):
            if mine.lower() == theirs.lower() or not word_weight:
                continue
            tokens = tokenizer.convert_ids_to_tokens(ids[row].tolist())
            teacher_tokens = teacher_tokenizer.convert_ids_to_tokens(teacher_ids[row].tolist())
            end, teacher_end = tokens.index(tokenizer.eos_token), teacher_tokens.index(teacher_tokenizer.eos_token)
            for k, index in enumerate(word_targets(tokens[1:end], teacher_tokens[1:teacher_end])):
                if index is not None:
                    source[row, k + 1], weight[row, k + 1] = index + 1, word_weight
        target = target.gather(1, source[..., None].expand(-1, -1, target.shape[-1]))
        same = torch.tensor([s.lower() == t.lower() for s, t in zip(student_texts, teacher_texts)], device=device)
        weight = torch.where(same[:, None], 1.0, weight)  # the same text: every state must match
        error = ((hidden - target) ** 2).mean(-1)
        return (error * weight).sum() / weight.sum(), error, ids

    def held_out_pairs(templates, count, seed):
        """Descriptions of held-out scenes, every attribute said, and their grammar captions."""
        rng = random.Random(seed)
        scenes = [rng.choice(held_out_scenes) for _ in range(count)]
        return [describe(s, rng.choice(templates), rng) for s in scenes], [canonical(s) for s in scenes]

    @torch.no_grad()
    def check(templates, count=256) -> float:
        """Mean squared error after the end of text, on `held_out_pairs`."""
        student_texts, teacher_texts = held_out_pairs(templates, count, seed=99)
        _, error, ids = loss_of(student_texts, teacher_texts, 0.0, 1.0)
        return float(error[after_end(ids, tokenizer.eos_token_id)].mean())

    @torch.no_grad()
    def check_words(templates, count=256) -> float:
        """Mean squared error of the value words' states against the caption's, as `check`."""
        student_texts, teacher_texts = held_out_pairs(templates, count, seed=98)
        _, error, ids = loss_of(student_texts, teacher_texts, 0.0, 1.0)
        errors = []
        for row, theirs in enumerate(teacher_texts):
            tokens = tokenizer.convert_ids_to_tokens(ids[row].tolist())
            end = tokens.index(tokenizer.eos_token)
            teacher_tokens = teacher_tokenizer.tokenize(theirs)
            errors += [float(error[row, k + 1]) for k, index in enumerate(word_targets(tokens[1:end], teacher_tokens))
                       if index is not None]
        return sum(errors) / len(errors)

    def report(step: int) -> dict:
        return {"step": step, "training templates": check(TRAINING_TEMPLATES),
                "held-out templates": check(HELD_OUT_TEMPLATES), "held-out words": check_words(HELD_OUT_TEMPLATES)}

    if start == 0:
        accelerator.print(json.dumps(report(0)), flush=True)
    rng = random.Random(args.seed * 1000 + start)
    began = time.time()
    for step in range(start, args.steps):
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        student_texts, teacher_texts = batch([training_scene(rng) for _ in range(args.batch_size)], rng,
                                             args.composed, p_contradicting=args.contradicting)
        loss, _, _ = loss_of(student_texts, teacher_texts, args.early_weight, args.word_weight)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        optimizer.step()
        if step % 50 == 0 or step + 1 == args.steps:
            accelerator.print(f"step {step} loss {loss.item():.5f} {(time.time() - began) / (step - start + 1):.2f}s/step",
                              flush=True)
        if (step + 1) % args.checkpoint_every == 0 or step + 1 == args.steps:
            progress = report(step + 1)
            accelerator.print(json.dumps(progress), flush=True)
            unwrapped = accelerator.unwrap_model(student)
            unwrapped.save_pretrained(out / "text_encoder")
            tokenizer.save_pretrained(out / "tokenizer")
            torch.save({"student": unwrapped.state_dict(), "optimizer": optimizer.state_dict(), "step": step + 1},
                       state_file.with_suffix(".tmp"))
            state_file.with_suffix(".tmp").replace(state_file)
            (out / "progress.json").write_text(json.dumps(progress))


if __name__ == "__main__":
    main()

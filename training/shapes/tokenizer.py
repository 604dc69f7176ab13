"""Build a real CLIP BPE tokenizer offline, learned from the shapes world's caption grammar.

CLIP's format: a byte-level alphabet (each byte and each byte + "</w>"), then one token per learned merge,
then the two special tokens. Merges are learned the classic way (most frequent adjacent pair first).
"""
from __future__ import annotations

import collections
import random
import re

from pipelines.shapes.world import all_scenes, caption, random_keep

_WORD = re.compile(r"[a-z]+|[0-9]|[^\sa-z0-9]+")


def _bytes_to_unicode() -> list[str]:
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def caption_corpus(count: int = 20000, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    scenes = all_scenes()
    return [caption(rng.choice(scenes), rng, random_keep(rng)) for _ in range(count)]


def learn_bpe(texts: list[str], max_merges: int = 400) -> tuple[dict[str, int], list[tuple[str, str]]]:
    words = collections.Counter(w for t in texts for w in _WORD.findall(t.lower()))
    splits = {w: tuple(w[:-1]) + (w[-1] + "</w>",) for w in words}
    merges: list[tuple[str, str]] = []
    while len(merges) < max_merges:
        pairs = collections.Counter()
        for word, symbols in splits.items():
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] += words[word]
        if not pairs:
            break
        best = max(pairs, key=lambda p: (pairs[p], p))
        merges.append(best)
        for word, symbols in splits.items():
            out, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    out.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            splits[word] = tuple(out)
    alphabet = _bytes_to_unicode()
    tokens = alphabet + [c + "</w>" for c in alphabet] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {}
    for token in tokens:
        vocab.setdefault(token, len(vocab))
    return vocab, merges


def build_tokenizer(max_length: int = 77):
    from transformers import CLIPTokenizer

    vocab, merges = learn_bpe(caption_corpus())
    return CLIPTokenizer(vocab=vocab, merges=list(merges), model_max_length=max_length)

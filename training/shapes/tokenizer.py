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


def _merge(symbols: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            out.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


def learn_bpe(texts: list[str], max_merges: int = 400,
              initial: list[tuple[str, str]] = ()) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """CLIP's vocabulary and merges learned from `texts`; `initial` merges come first, unchanged (so a word
    the old merges covered splits as before) and learning continues from them up to `max_merges` in all; their
    tokens keep their ids."""
    words = collections.Counter(w for t in texts for w in _WORD.findall(t.lower()))
    splits = {w: tuple(w[:-1]) + (w[-1] + "</w>",) for w in words}
    merges: list[tuple[str, str]] = list(initial)
    for pair in merges:
        splits = {word: _merge(symbols, pair) for word, symbols in splits.items()}
    while len(merges) < max_merges:
        pairs = collections.Counter()
        for word, symbols in splits.items():
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] += words[word]
        if not pairs:
            break
        best = max(pairs, key=lambda p: (pairs[p], p))
        merges.append(best)
        splits = {word: _merge(symbols, best) for word, symbols in splits.items()}
    alphabet = _bytes_to_unicode()
    # The special tokens follow the `initial` merges (all merges when none): a tokenizer extended this way
    # gives every text the old one could say the same ids, start and end of text included.
    first = len(initial) or len(merges)
    tokens = alphabet + [c + "</w>" for c in alphabet] + ["".join(m) for m in merges[:first]]
    tokens += ["<|startoftext|>", "<|endoftext|>"] + ["".join(m) for m in merges[first:]]
    vocab = {}
    for token in tokens:
        vocab.setdefault(token, len(vocab))
    return vocab, merges


def build_tokenizer(max_length: int = 77):
    """The caption grammar's tokenizer (the UNet, adapters and the first text encoder were trained with it)."""
    from transformers import CLIPTokenizer

    vocab, merges = learn_bpe(caption_corpus())
    return CLIPTokenizer(vocab=vocab, merges=list(merges), model_max_length=max_length)


def phrasing_corpus(count: int = 20000, seed: int = 1) -> list[str]:
    """Descriptions through the training templates only (pipelines/shapes/phrasing.py), lower case."""
    from pipelines.shapes.phrasing import random_description

    rng = random.Random(seed)
    scenes = all_scenes()
    return [random_description(rng.choice(scenes), rng, keep=random_keep(rng)).lower() for _ in range(count)]


def build_phrasing_tokenizer(max_length: int = 77):
    """The grammar's merges, then more learned from the training templates' descriptions: synonyms,
    spellings and small words become whole tokens. Text the grammar's tokenizer read has the same ids here."""
    from transformers import CLIPTokenizer

    _, grammar_merges = learn_bpe(caption_corpus())
    vocab, merges = learn_bpe(caption_corpus() + phrasing_corpus(), max_merges=len(grammar_merges) + 200,
                              initial=grammar_merges)
    return CLIPTokenizer(vocab=vocab, merges=list(merges), model_max_length=max_length)

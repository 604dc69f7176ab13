"""The prompt syntax and the 75-token chunks, against AUTOMATIC1111's own examples and rules (no model)."""
from pathlib import Path

import pytest
import torch

from pipelines.prompts.chunks import CHUNK_LENGTH, PLACEHOLDER_ID, chunk_ids, chunk_prompt, chunk_weights, token_spec
from pipelines.prompts.embeddings import Embedding
from pipelines.prompts.parser import BREAK, PromptSyntaxError, parse_prompt

CONFIGS = Path(__file__).resolve().parent.parent / "assets" / "configs"


def approx(pieces):
    return [piece if piece is BREAK else (piece[0], pytest.approx(piece[1])) for piece in pieces]


# The examples in the docstring of A1111's modules/prompt_parser.py:parse_prompt_attention.
@pytest.mark.parametrize("text, expected", [
    ("normal text", [("normal text", 1.0)]),
    ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
    ("(unbalanced", [("unbalanced", 1.1)]),
    (r"\(literal\]", [("(literal]", 1.0)]),
    ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
    ("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
     [("a ", 1.0), ("house", 1.573), (" ", 1.1), ("on", 1.0), (" a ", 1.1), ("hill", 0.55),
      (", sun, ", 1.1), ("sky", 1.4641), (".", 1.1)]),
])
def test_attention_syntax_reads_as_a1111_documents_it(text, expected):
    assert parse_prompt(text) == approx(expected)


def test_weights_brackets_escapes_and_break():
    assert parse_prompt("a (red:1.6) circle") == [("a ", 1.0), ("red", 1.6), (" circle", 1.0)]
    assert parse_prompt("a (red:1.0) circle") == [("a red circle", 1.0)]  # merged back: nothing changes
    assert parse_prompt("[faint]") == approx([("faint", 1 / 1.1)])
    assert parse_prompt("[[faint]]") == approx([("faint", 1 / 1.21)])
    assert parse_prompt(r"a \(b\) \\ c") == [(r"a (b) \ c", 1.0)]
    assert parse_prompt("stray ) and ] and : stay") == [("stray ) and ] and : stay", 1.0)]
    assert parse_prompt("(a: 1.2)") == approx([("a: 1.2", 1.1)])  # A1111 needs ":1.2)" with no space
    assert parse_prompt("") == [("", 1.0)]
    assert parse_prompt("red circle BREAK blue background") == [("red circle", 1.0), BREAK, ("blue background", 1.0)]
    assert parse_prompt("(red BREAK blue)") == approx([("red", 1.1), BREAK, ("blue", 1.1)])  # still a break
    assert parse_prompt("BREAKFAST, Break") == [("BREAKFAST, Break", 1.0)]  # only the capital word
    with pytest.raises(PromptSyntaxError, match="1.2.3"):
        parse_prompt("(red:1.2.3)")


@pytest.fixture(scope="module")
def tokenizers():
    from transformers import CLIPTokenizer

    return {name: CLIPTokenizer.from_pretrained(str(CONFIGS / name / "tokenizer")) for name in ("sd1", "sd2")}


def chunks_of(text, tokenizer, embeddings=()):
    spec = token_spec(tokenizer, list(embeddings))
    return chunk_prompt(parse_prompt(text), tokenizer, spec), spec


def test_a_short_prompt_is_the_tokenizers_own_padded_input(tokenizers):
    for name, tokenizer in tokenizers.items():
        for text in ("a photo of a dog", "", "small green star, bottom right"):
            chunks, spec = chunks_of(text, tokenizer)
            expected = tokenizer(text, padding="max_length", max_length=77, truncation=True).input_ids
            assert len(chunks) == 1 and chunk_ids(chunks[0], spec) == expected, (name, text)
    assert chunks_of("a", tokenizers["sd2"])[1].pad == 0  # OpenCLIP's "!" pads SD 2's prompts


def test_long_prompts_are_cut_every_75_tokens_or_after_a_comma_within_20(tokenizers):
    tokenizer = tokenizers["sd1"]
    words = " ".join(["red"] * 150)  # "red" is one token
    chunks, spec = chunks_of(words, tokenizer)
    assert [len(c.tokens) for c in chunks] == [75, 75]
    assert chunk_ids(chunks[0], spec) == tokenizer(words, padding="max_length", max_length=77,
                                                    truncation=True).input_ids  # what truncation would keep
    # A comma 5 tokens before the end: the 5 words after it move to the next chunk, together.
    text = " ".join(["red"] * 69) + ", " + " ".join(["blue"] * 10)
    chunks, _ = chunks_of(text, tokenizer)
    assert [len(c.tokens) for c in chunks] == [70, 10]
    assert tokenizer.decode(chunks[1].tokens) == " ".join(["blue"] * 10)
    # A comma further back than 20 tokens: a plain cut at 75.
    text = " ".join(["red"] * 40) + ", " + " ".join(["blue"] * 50)
    assert [len(c.tokens) for c in chunks_of(text, tokenizer)[0]] == [75, 16]


def test_break_starts_a_new_chunk_and_weights_follow_their_tokens(tokenizers):
    tokenizer = tokenizers["sd1"]
    chunks, spec = chunks_of("a (red:1.5) circle BREAK on white", tokenizer)
    assert len(chunks) == 2
    assert chunks[0].weights == [1.0, 1.5, 1.0] and chunks[1].weights == [1.0, 1.0]
    weights = chunk_weights(chunks[0])
    assert len(weights) == 77 and weights[2] == 1.5 and sum(w != 1.0 for w in weights) == 1
    assert len(chunks_of("BREAK a", tokenizer)[0]) == 2  # an empty first chunk, as A1111 makes
    assert len(chunks_of("a BREAK", tokenizer)[0]) == 1  # but no empty last one
    assert len(chunks_of("", tokenizer)[0]) == 1


def test_an_embedding_takes_its_vectors_place_where_its_name_is_written(tokenizers):
    tokenizer = tokenizers["sd1"]
    style = Embedding("mystyle", "mystyle.pt", {"": torch.zeros(3, 768)})
    chunks, spec = chunks_of("a (MyStyle:1.2) dog, mystyle", tokenizer, [style])  # CLIP lowercases
    chunk = chunks[0]
    assert [offset for offset, _ in chunk.fixes] == [1, 6]
    assert chunk.tokens[1:4] == [PLACEHOLDER_ID] * 3 and chunk.weights[1:4] == [1.2] * 3
    assert len(chunk.tokens) == 1 + 3 + 1 + 1 + 3  # a, 3 vectors, dog, comma, 3 vectors
    assert chunks_of("a my style dog", tokenizer, [style])[0][0].fixes == []  # other tokens: no match
    # Vectors never straddle two chunks: 74 words, then the embedding goes whole into the next chunk.
    chunks, _ = chunks_of(" ".join(["red"] * 74) + " mystyle", tokenizer, [style])
    assert [len(c.tokens) for c in chunks] == [74, 3] and chunks[1].fixes[0][0] == 0
    assert CHUNK_LENGTH == 75

"""A parsed prompt -> chunks of at most 75 tokens, the way AUTOMATIC1111 cuts them.

Each chunk becomes one 77-token CLIP input: start token, its tokens, end token, then the tokenizer's padding
token (the end token for OpenAI's CLIP; "!" = id 0 for OpenCLIP's tokenizers, as SD 2 and SDXL's second
encoder were trained with). A chunk ends when it is full, at BREAK, or, when the next token would not fit,
after the last comma among its final 20 tokens (the words after that comma move to the next chunk together).
An embedding's vectors never straddle two chunks. An empty prompt is one chunk with no tokens.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.prompts.embeddings import Embedding
from pipelines.prompts.parser import BREAK

CHUNK_LENGTH = 75
COMMA_BACKTRACK = 20  # A1111's "comma_padding_backtrack" default
PLACEHOLDER_ID = 0  # stands where an embedding's vectors go; its token vector is replaced


@dataclass
class Chunk:
    tokens: list[int] = field(default_factory=list)  # at most CHUNK_LENGTH, without start/end
    weights: list[float] = field(default_factory=list)
    fixes: list[tuple[int, Embedding]] = field(default_factory=list)  # (offset in tokens, embedding)


@dataclass(frozen=True)
class TokenSpec:
    """What a CLIP tokenizer contributes: its special ids, and the embeddings spelled in its tokens."""

    bos: int
    eos: int
    pad: int
    comma: int | None
    embeddings: dict[int, list[tuple[list[int], Embedding]]]  # first id -> (ids, embedding), longest first


def token_spec(tokenizer, embeddings: list[Embedding] = ()) -> TokenSpec:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    lookup: dict[int, list[tuple[list[int], Embedding]]] = {}
    for embedding in embeddings:
        ids = tokenize(tokenizer, [embedding.name])[0]
        if ids:
            lookup.setdefault(ids[0], []).append((ids, embedding))
    for matches in lookup.values():
        matches.sort(key=lambda pair: len(pair[0]), reverse=True)
    comma = tokenizer.convert_tokens_to_ids(",</w>")  # a whole-word comma; absent: the unknown token's id
    comma = None if comma is None or comma == tokenizer.unk_token_id else comma
    return TokenSpec(tokenizer.bos_token_id, tokenizer.eos_token_id, pad, comma, lookup)


def tokenize(tokenizer, texts: list[str]) -> list[list[int]]:
    """Token ids without start/end tokens and without any length limit (verbose=False: no length warning)."""
    if not texts:
        return []
    return tokenizer(texts, truncation=False, add_special_tokens=False, verbose=False)["input_ids"]


def _match(spec: TokenSpec, tokens: list[int], position: int) -> tuple[Embedding, int] | None:
    for ids, embedding in spec.embeddings.get(tokens[position], ()):
        if tokens[position:position + len(ids)] == ids:
            return embedding, len(ids)
    return None


def chunk_prompt(pieces: list, tokenizer, spec: TokenSpec) -> list[Chunk]:
    """The chunks of a parsed prompt (parser.parse_prompt's pieces)."""
    texts = [piece for piece in pieces if piece is not BREAK]
    tokenized = iter(tokenize(tokenizer, [text for text, _ in texts]))
    chunks: list[Chunk] = []
    chunk = Chunk()
    last_comma = -1

    def close() -> None:
        nonlocal chunk, last_comma
        chunks.append(chunk)
        chunk, last_comma = Chunk(), -1

    for piece in pieces:
        if piece is BREAK:
            close()
            continue
        weight = piece[1]
        tokens = next(tokenized)
        position = 0
        while position < len(tokens):
            token = tokens[position]
            if token == spec.comma:
                last_comma = len(chunk.tokens)
            elif (len(chunk.tokens) == CHUNK_LENGTH and last_comma != -1
                  and len(chunk.tokens) - last_comma <= COMMA_BACKTRACK):
                cut = last_comma + 1  # the words after the comma move on with what follows
                moved = Chunk(chunk.tokens[cut:], chunk.weights[cut:],
                              [(offset - cut, e) for offset, e in chunk.fixes if offset >= cut])
                chunk.tokens, chunk.weights = chunk.tokens[:cut], chunk.weights[:cut]
                chunk.fixes = [(offset, e) for offset, e in chunk.fixes if offset < cut]
                close()
                chunk = moved
            if len(chunk.tokens) == CHUNK_LENGTH:
                close()
            found = _match(spec, tokens, position)
            if found is None:
                chunk.tokens.append(token)
                chunk.weights.append(weight)
                position += 1
                continue
            embedding, spelled = found
            if len(chunk.tokens) + embedding.count > CHUNK_LENGTH:
                close()
            chunk.fixes.append((len(chunk.tokens), embedding))
            chunk.tokens += [PLACEHOLDER_ID] * embedding.count
            chunk.weights += [weight] * embedding.count
            position += spelled
    if chunk.tokens or not chunks:
        close()
    return chunks


def chunk_ids(chunk: Chunk, spec: TokenSpec) -> list[int]:
    """The 77 ids CLIP reads for a chunk."""
    return [spec.bos, *chunk.tokens, spec.eos] + [spec.pad] * (CHUNK_LENGTH - len(chunk.tokens))


def chunk_weights(chunk: Chunk) -> list[float]:
    return [1.0, *chunk.weights] + [1.0] * (CHUNK_LENGTH + 1 - len(chunk.weights))

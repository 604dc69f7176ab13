"""Prompts the AUTOMATIC1111 way: attention weights, BREAK, any length, textual-inversion embeddings, clip skip.

    kwargs = encode_prompts(loaded, "a (red:1.3) circle", "blurry", guidance=True, clip_skip=1,
                            embeddings=library).kwargs
    pipe(**kwargs, ...)   # prompt_embeds, negative_prompt_embeds (+ SDXL's pooled ones)

A prompt is cut into chunks of 75 tokens (pipelines/prompts/chunks.py); each is encoded on its own as a
77-token CLIP input and the results are concatenated, so a prompt of n chunks gives n*77 vectors. With
guidance the negative prompt is padded with empty-prompt chunks to the same length (or the prompt is, when
the negative one is longer), as A1111 pads them. SDXL: both encoders read the same chunks; their
penultimate layers are joined, and the pooled embedding comes from text_encoder_2 on the first chunk; an
empty negative prompt is all zeros there (diffusers' and A1111's `force_zeros_for_empty_prompt`).

Clip skip N (A1111's "Clip skip") reads the N-th layer from the end, then CLIP's final layer norm, for the
one-encoder families (shapes, SD 1.x, SD 2.x). SDXL already reads the penultimate layer of both encoders,
and A1111 leaves it at that whatever Clip skip says (unless its "Clip skip SDXL" option is set), so SDXL
ignores it here too, which keeps A1111's SDXL images reproducible.

A plain prompt of at most 75 tokens is encoded bitwise as diffusers' `encode_prompt` encodes it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch

from pipelines.prompts.chunks import Chunk, TokenSpec, chunk_prompt, token_spec
from pipelines.prompts.embeddings import Embedding, EmbeddingError, EmbeddingLibrary, embedding_widths
from pipelines.prompts.encoder import chunk_vectors, layer_count, weighted
from pipelines.prompts.parser import PromptSyntaxError, parse_prompt
from pipelines.families import get_family
from pipelines.requests import InvalidRequest

FIELDS = ("prompt", "negative_prompt")


@dataclass(frozen=True)
class PromptEmbeddings:
    kwargs: dict[str, Any]  # prompt_embeds, negative_prompt_embeds (+ the pooled ones for SDXL)
    chunks: int = 1  # 77-token chunks per prompt (both prompts have this many)


@dataclass(frozen=True)
class _TextEncoder:
    tokenizer: Any
    model: Any
    part: str  # which vectors of an embedding it takes: "" (one encoder), "clip_l" or "clip_g" (SDXL)

    @property
    def width(self) -> int:
        return int(self.model.config.hidden_size)


def _text_encoders(loaded) -> list[_TextEncoder]:
    """The family's text encoders (pipelines/families.py: tokenizer, encoder and embedding part names)."""
    c = loaded.components
    return [_TextEncoder(c[tokenizer], c[encoder], part)
            for tokenizer, encoder, part in get_family(loaded.family).text_encoders]


def check_clip_skip(loaded, clip_skip: int) -> None:
    """Clip skip cannot go deeper than the text encoder's layers (SDXL ignores it, see the module docstring)."""
    if not get_family(loaded.family).clip_skip:
        return
    layers = layer_count(loaded.components["text_encoder"])
    if not 1 <= clip_skip <= layers:
        raise InvalidRequest("clip_skip", f"must be from 1 to {layers} for {loaded.spec.key!r} (its text encoder "
                             f"has {layers} layers), got {clip_skip}")


def _mentioned(embeddings, texts: dict[str, str]) -> list[Embedding]:
    """The embeddings whose names occur in the texts, read from disk; a broken file is refused by name."""
    if embeddings is None:
        return []
    if isinstance(embeddings, Mapping):
        library = None
        names = [name for name in embeddings if any(name.lower() in t.lower() for t in texts.values())]
    else:
        library = embeddings
        names = library.mentioned_in(*texts.values())
    found = []
    for name in names:
        try:
            found.append(embeddings[name] if library is None else library.get(name))
        except EmbeddingError as error:
            field = next(f for f, t in texts.items() if " ".join(name.lower().split()) in " ".join(t.lower().split()))
            raise InvalidRequest(field, f"embedding {name!r} cannot be used: {error}") from None
        except KeyError:  # removed from the folder since it was listed
            continue
    return found


def _plan(loaded, texts: dict[str, str], embeddings) -> list[tuple[_TextEncoder, TokenSpec, dict[str, list[Chunk]]]]:
    """Per text encoder: its token spec and each text's chunks. Refuses what cannot be encoded, by field."""
    pieces = {}
    for field, text in texts.items():
        try:
            pieces[field] = parse_prompt(text)
        except PromptSyntaxError as error:
            raise InvalidRequest(field, str(error)) from None
    used = _mentioned(embeddings, texts)
    plan = []
    for encoder in _text_encoders(loaded):
        spec = token_spec(encoder.tokenizer, used)
        chunks = {field: chunk_prompt(p, encoder.tokenizer, spec) for field, p in pieces.items()}
        for field, field_chunks in chunks.items():
            for chunk in field_chunks:
                for _, embedding in chunk.fixes:
                    _check_width(loaded, encoder, embedding, field)
        plan.append((encoder, spec, chunks))
    return plan


def _check_width(loaded, encoder: _TextEncoder, embedding: Embedding, field: str) -> None:
    vectors = embedding.vectors.get(encoder.part)
    if vectors is None or vectors.shape[1] != encoder.width:
        needs = ("an SDXL embedding (clip_l and clip_g vectors)" if encoder.part
                 else f"{encoder.width}-wide token vectors")
        raise InvalidRequest(field, f"embedding {embedding.name!r} is {embedding.describe()}, but "
                             f"{loaded.spec.key!r} ({loaded.family}) needs {needs}")


def check_prompts(loaded, prompt: str, negative_prompt: str, *, clip_skip: int = 1, embeddings=None) -> None:
    """Everything encode_prompts would refuse (bad weights, unusable embeddings, clip skip too deep), cheaply."""
    check_clip_skip(loaded, clip_skip)
    with loaded.text_lock:
        _plan(loaded, {"prompt": prompt, "negative_prompt": negative_prompt}, embeddings)


def encode_prompts(loaded, prompt: str, negative_prompt: str = "", *, guidance: bool, clip_skip: int = 1,
                   embeddings: EmbeddingLibrary | Mapping[str, Embedding] | None = None) -> PromptEmbeddings:
    """The pipeline's prompt_embeds kwargs for a prompt (and, with guidance, its negative prompt).

    `embeddings`: the embeddings folder (or {name: Embedding}); a name found in either prompt is used.
    Holds the model's text lock: its fast tokenizer must not be used by two threads at once.
    """
    check_clip_skip(loaded, clip_skip)
    sdxl = get_family(loaded.family).pooled_text  # SDXL's two encoders: penultimate layers, pooled embeds
    zero_negative = guidance and sdxl and negative_prompt == ""
    texts = {"prompt": prompt, "negative_prompt": negative_prompt} if guidance and not zero_negative \
        else {"prompt": prompt}
    with loaded.text_lock, torch.inference_mode():
        plan = _plan(loaded, texts, embeddings)
        count = max(len(chunks) for _, _, by_field in plan for chunks in by_field.values())
        outputs: dict[str, list[torch.Tensor]] = {field: [] for field in texts}
        pooled: dict[str, torch.Tensor] = {}
        for encoder, spec, by_field in plan:
            for field, chunks in by_field.items():
                padded = chunks + [Chunk() for _ in range(count - len(chunks))]
                per_chunk = []
                for k, chunk in enumerate(padded):
                    z, pool = chunk_vectors(encoder.model, chunk, spec, encoder.part, loaded.device, sdxl=sdxl,
                                            clip_skip=clip_skip, pooled=sdxl and encoder.part == "clip_g" and k == 0)
                    if pool is not None:
                        pooled[field] = pool
                    per_chunk.append(weighted(z, chunk))
                outputs[field].append(torch.cat(per_chunk, dim=1))
        dtype = _text_encoders(loaded)[-1].model.dtype
        embeds = {field: torch.cat(parts, dim=-1).to(dtype=dtype, device=loaded.device)
                  for field, parts in outputs.items()}
        kwargs = {"prompt_embeds": embeds["prompt"]}
        if sdxl:
            kwargs["pooled_prompt_embeds"] = pooled["prompt"].to(dtype=dtype, device=loaded.device)
        if guidance:
            if zero_negative:
                kwargs["negative_prompt_embeds"] = torch.zeros_like(kwargs["prompt_embeds"])
                kwargs["negative_pooled_prompt_embeds"] = torch.zeros_like(kwargs["pooled_prompt_embeds"])
            else:
                kwargs["negative_prompt_embeds"] = embeds["negative_prompt"]
                if sdxl:
                    kwargs["negative_pooled_prompt_embeds"] = pooled["negative_prompt"].to(dtype=dtype,
                                                                                          device=loaded.device)
    return PromptEmbeddings(kwargs, count)


__all__ = ["PromptEmbeddings", "encode_prompts", "check_prompts", "check_clip_skip", "EmbeddingLibrary",
           "Embedding", "EmbeddingError", "embedding_widths", "parse_prompt"]

"""Running CLIP on one 77-token chunk, with embedding vectors put in at the token level, clip skip and weights.

transformers 5's `CLIPTextModel` takes only `input_ids`, so the forward pass is spelled out here from its
parts (token and position embeddings, the causal mask, the layers, the final layer norm), the same calls in
the same order: for a chunk without embeddings the result is bitwise what `text_encoder(input_ids)` gives
(tests/test_prompts_encoder.py checks it). The shared modules are only read, never changed.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from pipelines.prompts.chunks import Chunk, TokenSpec, chunk_ids, chunk_weights


@dataclass(frozen=True)
class ChunkOutput:
    hidden_states: list[torch.Tensor]  # [token+position embeddings, after layer 1, ..., after the last one run]
    final: torch.Tensor | None  # final layer norm of the last layer (None when it was not run)
    eos_position: int


def text_model(encoder):
    """The CLIPTextModel inside (CLIPTextModelWithProjection wraps one; transformers 5 flattened the other)."""
    return getattr(encoder, "text_model", encoder)


def layer_count(encoder) -> int:
    return len(text_model(encoder).encoder.layers)


def run_chunk(encoder, chunk: Chunk, spec: TokenSpec, part: str, device, *, layers: int | None = None) -> ChunkOutput:
    """CLIP on one chunk; `layers` stops after that many layers (later ones cannot change earlier states)."""
    from transformers.masking_utils import create_causal_mask

    model = text_model(encoder)
    ids = torch.tensor([chunk_ids(chunk, spec)], dtype=torch.long, device=device)
    tokens = model.embeddings.token_embedding(ids)
    if chunk.fixes:
        tokens = tokens.clone()
        for offset, embedding in chunk.fixes:
            vectors = embedding.vectors[part]
            tokens[0, 1 + offset:1 + offset + len(vectors)] = vectors.to(device=device, dtype=tokens.dtype)
    hidden = model.embeddings(inputs_embeds=tokens)
    mask = create_causal_mask(config=model.config, inputs_embeds=hidden, attention_mask=None, past_key_values=None)
    states = [hidden]
    all_layers = model.encoder.layers
    for layer in all_layers[:len(all_layers) if layers is None else layers]:
        hidden = layer(hidden, mask, is_causal=True)
        states.append(hidden)
    final = model.final_layer_norm(hidden) if len(states) == len(all_layers) + 1 else None
    return ChunkOutput(states, final, 1 + len(chunk.tokens))


def pooled_output(encoder, output: ChunkOutput) -> torch.Tensor:
    """SDXL's pooled text embedding: the projected, normalised state at the end token."""
    pooled = output.final[torch.arange(1, device=output.final.device), output.eos_position]
    return encoder.text_projection(pooled)


def chunk_vectors(encoder, chunk: Chunk, spec: TokenSpec, part: str, device, *, sdxl: bool, clip_skip: int,
                  pooled: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One chunk's vectors as the UNet reads them, and SDXL's pooled embedding when `pooled`.

    SD 1.x / 2.x / shapes: the `clip_skip`-th last layer through the final layer norm. SDXL: the penultimate
    layer as it is (clip skip does not apply); only the pooled embedding needs the last layer."""
    layers = layer_count(encoder)
    if sdxl:
        out = run_chunk(encoder, chunk, spec, part, device, layers=None if pooled else layers - 1)
        return out.hidden_states[layers - 1], pooled_output(encoder, out) if pooled else None
    out = run_chunk(encoder, chunk, spec, part, device, layers=layers - clip_skip + 1)
    return (out.final if clip_skip == 1 else text_model(encoder).final_layer_norm(out.hidden_states[-1])), None


def weighted(z: torch.Tensor, chunk: Chunk) -> torch.Tensor:
    """A1111's emphasis: each token's vector times its weight, then the whole chunk rescaled to its old mean.
    A chunk whose weights are all 1 is returned as it is (the rescale would change its last bits)."""
    weights = chunk_weights(chunk)
    if all(w == 1.0 for w in weights):
        return z
    original_mean = z.mean()
    z = z * torch.tensor(weights, device=z.device, dtype=z.dtype).reshape(1, -1, 1)
    return z * (original_mean / z.mean())

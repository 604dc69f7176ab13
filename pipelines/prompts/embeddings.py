"""Textual-inversion embeddings: files in the embeddings folder, used by name in a prompt.

Formats read (the name is the file's stem; for diffusers' `learned_embeds.*` inside a folder, the folder's):

- AUTOMATIC1111 `.pt`: {"string_to_param": {"*": tensor(n, width)}, "name": ..., "step": ...};
- AUTOMATIC1111 `.safetensors`: {"emb_params": tensor(n, width)}, or for SDXL {"clip_l": (n, 768),
  "clip_g": (n, 1280)};
- diffusers (`learned_embeds.bin` / `.safetensors`): {"<token>": tensor(width) or (n, width)}.

`.pt` and `.bin` files are pickles: they are read with torch's weights-only loader, which builds tensors and
plain containers and nothing else. A file is read when its name is first looked up or listed by width, then
kept until it changes on disk.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import torch

EMBEDDING_SUFFIXES = (".pt", ".bin", ".safetensors")
DIFFUSERS_FILE_STEM = "learned_embeds"
MAX_VECTORS = 75  # one chunk: an embedding must fit in it
SDXL_PARTS = ("clip_l", "clip_g")  # text_encoder, text_encoder_2


class EmbeddingError(ValueError):
    """A file in the embeddings folder that is not a usable embedding (the message says why)."""


@dataclass(frozen=True)
class Embedding:
    name: str
    path: str
    vectors: dict[str, torch.Tensor]  # "" for one text encoder; "clip_l" and "clip_g" for SDXL's two

    @property
    def count(self) -> int:
        """How many token positions it takes in a prompt."""
        return int(next(iter(self.vectors.values())).shape[0])

    @property
    def widths(self) -> tuple[int, ...]:
        return tuple(int(self.vectors[key].shape[1]) for key in sorted(self.vectors, key=_part_order))

    def describe(self) -> str:
        if set(self.vectors) == set(SDXL_PARTS):
            return f"an SDXL embedding (clip_l {self.widths[0]} + clip_g {self.widths[1]} wide)"
        return f"{self.widths[0]} wide"


def _part_order(key: str) -> int:
    return SDXL_PARTS.index(key) if key in SDXL_PARTS else -1


def embedding_widths(family: str) -> tuple[int, ...]:
    """The token-vector widths of a family's text encoders (pipelines/families.py)."""
    from pipelines.families import get_family

    return get_family(family).embedding_widths


def embedding_name(path: Path, root: Path | None = None) -> str:
    """The word that calls the embedding in a prompt: the file's stem, or the folder of a diffusers file."""
    if path.stem == DIFFUSERS_FILE_STEM and root is not None and path.parent != root:
        return path.parent.name
    return path.stem


def read_embedding(path: str | Path, name: str | None = None) -> Embedding:
    """Load one embedding file (see the module docstring for the formats); EmbeddingError if it is not one."""
    path = Path(path)
    name = name or embedding_name(path)
    data = _load(path)
    if not isinstance(data, dict) or not data:
        raise EmbeddingError(f"{path.name}: not an embedding (expected a dict of tensors)")
    if "string_to_param" in data:  # A1111 .pt
        params = data["string_to_param"]
        params = getattr(params, "_parameters", params)
        if not isinstance(params, dict) or len(params) != 1:
            raise EmbeddingError(f"{path.name}: an A1111 embedding must hold exactly one term")
        vectors = {"": next(iter(params.values()))}
    elif all(part in data for part in SDXL_PARTS):
        vectors = {part: data[part] for part in SDXL_PARTS}
    elif "emb_params" in data:
        vectors = {"": data["emb_params"]}
    else:
        tensors = [value for value in data.values() if isinstance(value, torch.Tensor)]
        if len(tensors) != 1:
            raise EmbeddingError(f"{path.name}: not an embedding: expected one tensor (diffusers' "
                                 f"{{token: vector}}), 'emb_params', 'string_to_param' or 'clip_l'/'clip_g'")
        vectors = {"": tensors[0]}
    return Embedding(name, str(path), {key: _matrix(path, value) for key, value in vectors.items()})


def _load(path: Path):
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as error:  # a truncated or foreign file
            raise EmbeddingError(f"{path.name}: not a readable .safetensors file ({error})") from None
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # the weights-only unpickler refuses anything but tensors and containers
        raise EmbeddingError(f"{path.name}: could not be read with torch's weights-only loader, which is the "
                             f"only way pickles are opened here ({type(error).__name__}: {error}); "
                             "a .safetensors copy of it would load") from None


def _matrix(path: Path, value) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.ndim not in (1, 2) or value.numel() == 0:
        raise EmbeddingError(f"{path.name}: the vectors must be a tensor of shape (width,) or (count, width)")
    value = value.detach().to(dtype=torch.float32)
    value = value.unsqueeze(0) if value.ndim == 1 else value
    if value.shape[0] > MAX_VECTORS:
        raise EmbeddingError(f"{path.name}: {value.shape[0]} vectors; at most {MAX_VECTORS} fit in a prompt chunk")
    return value


class EmbeddingLibrary:
    """The embeddings folder (e.g. `models/embeddings/`, searched recursively): name -> file, read lazily."""

    def __init__(self, folder: str | Path | None):
        self.folder = Path(folder) if folder is not None else None
        self._lock = threading.Lock()
        self._paths: dict[str, Path] = {}
        self._cache: dict[Path, tuple[tuple[int, int], Embedding | EmbeddingError]] = {}
        self.rescan()

    def rescan(self) -> None:
        """List the folder again (files are read later, when used)."""
        paths: dict[str, Path] = {}
        if self.folder is not None and self.folder.is_dir():
            files = sorted(p for p in self.folder.rglob("*") if p.suffix.lower() in EMBEDDING_SUFFIXES
                           and p.is_file() and not any(part.startswith(".") for part in p.parts))
            for path in files:
                paths.setdefault(embedding_name(path, self.folder), path)  # the first in path order wins
        with self._lock:
            self._paths = paths

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._paths, key=str.lower)

    def get(self, name: str) -> Embedding:
        """The embedding called `name` (KeyError if there is none; EmbeddingError if its file is unusable)."""
        with self._lock:
            path = self._paths[name]
        try:
            stat = path.stat()
        except OSError as error:
            raise EmbeddingError(f"{path.name}: {error}") from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._cache.get(path)
        if cached is None or cached[0] != stamp:
            try:
                value: Embedding | EmbeddingError = read_embedding(path, name)
            except EmbeddingError as error:
                value = error
            with self._lock:
                self._cache[path] = (stamp, value)
            cached = (stamp, value)
        if isinstance(cached[1], EmbeddingError):
            raise cached[1]
        return cached[1]

    def with_widths(self, widths: tuple[int, ...]) -> list[str]:
        """Names of the usable embeddings whose vectors fit text encoders of these widths."""
        out = []
        for name in self.names():
            try:
                if self.get(name).widths == tuple(widths):
                    out.append(name)
            except (EmbeddingError, KeyError):
                continue
        return out

    def mentioned_in(self, *texts: str) -> list[str]:
        """Names that occur in the texts, case and spacing aside: the only ones worth matching as tokens."""
        haystack = " ".join(" ".join(text.lower().split()) for text in texts)
        return [name for name in self.names() if " ".join(name.lower().split()) in haystack]

"""Which T2I-Adapters exist for which base-model family, under stable keys, and how to load one.

`ADAPTERS[family][kind]` is public API: the UI lists its kinds, the CLI takes them in `--adapter KIND=...`,
and requests name them in `AdapterInput.kind`. A kind is what the condition map shows (edges, depth, ...),
not a particular checkpoint, so the same sketch works on every family that offers a sketch adapter.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..families import FAMILIES
from ..requests import InvalidRequest

SHAPES_MODEL_DIR = Path(__file__).resolve().parents[2] / "assets" / "shapes"


@dataclass(frozen=True)
class AdapterSpec:
    kind: str
    family: str
    source: str  # a hub id, or a local folder holding config.json + weights
    subfolder: str | None = None
    description: str = ""

    @property
    def is_local(self) -> bool:
        return Path(self.source).is_absolute() or Path(self.source).exists()

    @property
    def key(self) -> str:
        return f"{self.family}/{self.kind}"


ADAPTERS: dict[str, dict[str, AdapterSpec]] = {  # built from the family records (pipelines/families.py)
    family.key: {kind: AdapterSpec(kind, family.key, source, None, description)
                 for kind, (source, description) in family.adapters.items()}
    for family in FAMILIES.values() if family.adapters
}


def kinds_for(family: str) -> list[str]:
    """The adapter kinds offered for a base-model family ([] when it has none)."""
    return list(ADAPTERS.get(family, {}))


def adapter_spec(family: str, kind: str) -> AdapterSpec:
    """The adapter of `kind` for `family`; a clear InvalidRequest when that family offers no such adapter."""
    table = ADAPTERS.get(family)
    if not table:
        offering = ", ".join(f for f in ADAPTERS)
        raise InvalidRequest("adapters", f"models of family {family!r} have no T2I-Adapters; "
                                         f"adapters exist for the families {offering}")
    if kind not in table:
        elsewhere = sorted(f for f, kinds in ADAPTERS.items() if kind in kinds)
        hint = f" ({kind!r} exists for {', '.join(elsewhere)} models)" if elsewhere else ""
        raise InvalidRequest("adapters", f"adapter kind {kind!r} is not offered for {family!r} models{hint}; "
                                         f"choose one of {sorted(table)}")
    return table[kind]


def download_command(spec: AdapterSpec) -> str:
    return f"python -m studio download --adapter {spec.family}/{spec.kind}"


def local_adapter_dir(spec: AdapterSpec, cache_dir: str | Path | None = None) -> Path | None:
    """The folder holding the adapter's config.json, on disk or in the Hugging Face cache; None when absent."""
    if spec.is_local:
        folder = Path(spec.source) / (spec.subfolder or "")
        return folder if (folder / "config.json").is_file() else None
    from huggingface_hub import try_to_load_from_cache

    filename = f"{spec.subfolder}/config.json" if spec.subfolder else "config.json"
    cached = try_to_load_from_cache(spec.source, filename, cache_dir=cache_dir)
    if not isinstance(cached, str):
        return None
    folder = Path(cached).parent
    has_weights = any(folder.glob("*.safetensors")) or any(folder.glob("*.bin"))
    return folder if has_weights else None


def is_available(spec: AdapterSpec, cache_dir: str | Path | None = None) -> bool:
    return local_adapter_dir(spec, cache_dir) is not None


def load_adapter(spec: AdapterSpec, *, device=None, dtype=None, cache_dir: str | Path | None = None):
    """Load the adapter's weights from disk (never from the network). A missing download is a clear error
    that names the command to fetch it. Callers cache the result: an adapter loads once."""
    import torch
    from diffusers import T2IAdapter

    folder = local_adapter_dir(spec, cache_dir)
    if folder is None:
        where = spec.source if spec.is_local else f"{spec.source} (not in the Hugging Face cache)"
        raise InvalidRequest("adapters", f"the {spec.kind!r} adapter for {spec.family!r} models is not downloaded: "
                                         f"{where}. Fetch it with: {download_command(spec)}")
    from pipelines.module_building import MODULE_BUILDING

    with MODULE_BUILDING:
        adapter = T2IAdapter.from_pretrained(str(folder), dtype=dtype or torch.float32, local_files_only=True)
    if device is not None:
        adapter = adapter.to(device)
    return adapter.eval()


def check_fits(adapter, unet, vae_scale_factor: int, spec: AdapterSpec | None = None) -> None:
    """Raise a clear error when an adapter's shape cannot feed this UNet (a wrong-family local adapter)."""
    config = adapter.config
    name = spec.key if spec else "adapter"
    channels = list(config.channels)
    expected = list(unet.config.block_out_channels)
    shared = min(len(channels), len(expected))
    if channels[:shared] != expected[:shared]:
        raise InvalidRequest("adapters", f"{name} was made for a UNet with channels {channels}, "
                                         f"but this model's UNet has {expected}: it belongs to another model family")
    if config.downscale_factor % vae_scale_factor:
        raise InvalidRequest("adapters", f"{name} downscales by {config.downscale_factor}, "
                                         f"which does not fit this model's VAE scale {vae_scale_factor}")

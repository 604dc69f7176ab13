"""The model a run starts from: a private float32 copy on the CPU (accelerate moves it), never the
registry's shared cached one, because training changes it."""
from __future__ import annotations

from pathlib import Path


def load_training_base(model: str, registry=None, *, allow_ckpt: bool = False) -> tuple[dict, str]:
    """(components, family) of a registry key, or of a path when there is no registry."""
    import torch

    cpu, dtype = torch.device("cpu"), torch.float32
    if registry is not None:
        from pipelines.components import load_components

        allow = allow_ckpt or getattr(registry, "allow_ckpt", False)

        def load(key: str) -> dict:
            return load_components(registry.model_info(key), cpu, dtype, base_components=load, allow_ckpt=allow)

        return load(model), registry.model_info(model).family
    from pipelines.catalog import family_of_diffusers_folder
    from pipelines.checkpoints.folders import load_components as load_path
    from pipelines.checkpoints.single_file import detect_family

    path = Path(model)
    components = load_path(path, dtype=dtype, allow_ckpt=allow_ckpt)
    if path.is_file():
        return components, detect_family(path, allow_ckpt=allow_ckpt)
    return components, family_of_diffusers_folder(path if (path / "model_index.json").exists() else path.parent)

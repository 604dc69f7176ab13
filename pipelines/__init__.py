"""Diffusion Studio's model side: catalog, schedulers, generation, outputs. Never imports gradio.

    from pipelines import PipelineRegistry, GenerationRequest
    registry = PipelineRegistry(models_dir="models", outputs_dir="outputs")
    result = registry.generate(GenerationRequest(prompt="a red circle", scheduler="Euler a", seed=1))

Names are resolved on first use, so `import pipelines.shapes` or `pipelines.requests` does not pay for
importing diffusers.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "pipelines.requests": ("AdapterInput", "GeneratedImage", "GenerationCancelled", "GenerationRequest",
                           "GenerationResult", "InvalidRequest", "StepUpdate"),
    "pipelines.catalog": ("FAMILY_LIMITS", "Limits", "LoraSpec", "ModelSpec"),
    "pipelines.components": ("ModelNotAvailable",),
    "pipelines.families": ("FAMILIES", "MODES", "get_family"),
    "pipelines.registry": ("PipelineRegistry",),
    "pipelines.schedulers": ("SCHEDULERS", "SAMPLERS", "canonical_sampler", "register_scheduler",
                             "resolve_sampler", "schedule_type_names", "scheduler_names", "suggested_steps"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'pipelines' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))

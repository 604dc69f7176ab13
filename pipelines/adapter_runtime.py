"""T2I-Adapters at generation time: load each adapter once (cached), prepare the condition maps.

The adapter catalog and the preprocessors belong to pipelines/adapters/ (imported lazily here, so the
rest of the engine works while that package is absent).
"""
from __future__ import annotations

from PIL import Image

from pipelines.catalog import download_hint
from pipelines.components import LoadedModel, LRUCache
from pipelines.requests import GenerationRequest, InvalidRequest


def _adapters_package():
    try:
        from pipelines.adapters import catalog, preprocess
    except ImportError as error:
        raise InvalidRequest("adapters", f"adapter support is not available in this installation ({error})") from error
    return catalog, preprocess


def check_adapter_kind(family: str, kind: str):
    catalog, _ = _adapters_package()
    return catalog.adapter_spec(family, kind)


def condition_images(request: GenerationRequest) -> list[Image.Image]:
    """The maps actually fed to the adapters, each exactly (width, height)."""
    _, preprocess = _adapters_package()
    maps = []
    for adapter in request.adapters:
        image = preprocess.prepare_condition(adapter, request.width, request.height)
        if image.size != (request.width, request.height):
            raise InvalidRequest("adapters", f"the {adapter.kind} condition map is {image.size[0]}x{image.size[1]}, "
                                 f"expected {request.width}x{request.height}")
        maps.append(image.convert("RGB"))
    return maps


def _load_adapter(spec, loaded: LoadedModel):
    from diffusers import T2IAdapter

    kwargs = {"subfolder": spec.subfolder} if spec.subfolder else {}
    try:
        adapter = T2IAdapter.from_pretrained(str(spec.source), dtype=loaded.dtype, local_files_only=True, **kwargs)
    except OSError as error:
        raise InvalidRequest("adapters", f"the {spec.kind} adapter for {spec.family} ({spec.source}) is not on this "
                             f"machine; fetch it with: {download_hint(str(spec.source))}") from error
    adapter = adapter.to(device=loaded.device, dtype=loaded.dtype)
    adapter.requires_grad_(False)
    return adapter.eval()


def adapter_model(cache: LRUCache, loaded: LoadedModel, request: GenerationRequest):
    """A single T2IAdapter, or a MultiAdapter over several, built from the cached shared adapters."""
    catalog, _ = _adapters_package()
    models = []
    for adapter in request.adapters:
        spec = catalog.adapter_spec(loaded.family, adapter.kind)
        key = (str(spec.source), spec.subfolder, str(loaded.device), str(loaded.dtype))
        models.append(cache.get(key, lambda spec=spec: _load_adapter(spec, loaded)))
    if len(models) == 1:
        return models[0]
    from diffusers import MultiAdapter

    try:
        return MultiAdapter(models)  # a thin per-request wrapper around the shared adapters
    except ValueError as error:
        raise InvalidRequest("adapters", f"these adapters cannot be combined: {error}") from error

"""T2I-Adapters at generation time: load each adapter once (cached), prepare the condition maps.

The adapter catalog and the preprocessors belong to pipelines/adapters/ (imported lazily here, so the
rest of the engine works while that package is absent or broken).
"""
from __future__ import annotations

from PIL import Image

from pipelines.components import LoadedModel, LRUCache
from pipelines.requests import GenerationRequest, InvalidRequest


def _adapters_package():
    try:
        import pipelines.adapters as adapters
    except ImportError as error:
        raise InvalidRequest("adapters", f"adapter support is not available in this installation ({error})") from error
    return adapters


def check_adapter_kind(family: str, kind: str):
    return _adapters_package().adapter_spec(family, kind)


def condition_images(request: GenerationRequest, depth=None) -> list[Image.Image]:
    """The maps as the user sees them (RGB, exactly width x height), one per AdapterInput."""
    adapters = _adapters_package()
    maps = []
    for adapter in request.adapters:
        image = adapters.prepare_condition(adapter, request.width, request.height, depth=depth)
        if image.size != (request.width, request.height):
            raise InvalidRequest("adapters", f"the {adapter.kind} condition map is {image.size[0]}x{image.size[1]}, "
                                 f"expected {request.width}x{request.height}")
        maps.append(image.convert("RGB"))
    return maps


def adapter_inputs(adapter_models: list, maps: list[Image.Image]) -> list[Image.Image]:
    """The maps in the mode each adapter takes (single-channel adapters get "L" images)."""
    convert = _adapters_package().condition_for_adapter
    return [convert(image, model.config.in_channels) for model, image in zip(adapter_models, maps)]


def adapter_models(cache: LRUCache, loaded: LoadedModel, request: GenerationRequest) -> list:
    """The shared, cached T2IAdapter of each AdapterInput, checked against this model's UNet."""
    adapters = _adapters_package()
    vae_scale = 2 ** (len(loaded.components["vae"].config.block_out_channels) - 1)
    models = []
    for adapter in request.adapters:
        spec = adapters.adapter_spec(loaded.family, adapter.kind)
        key = (spec.key, str(spec.source), spec.subfolder, str(loaded.device), str(loaded.dtype))
        model = cache.get(key, lambda spec=spec: adapters.load_adapter(spec, device=loaded.device,
                                                                       dtype=loaded.dtype))
        adapters.check_fits(model, loaded.components["unet"], vae_scale, spec)
        models.append(model)
    return models


def combined_adapter(models: list):
    """One adapter as is; several wrapped in a per-request MultiAdapter around the shared ones."""
    if len(models) == 1:
        return models[0]
    from diffusers import MultiAdapter

    try:
        return MultiAdapter(models)
    except ValueError as error:
        raise InvalidRequest("adapters", f"these adapters cannot be combined: {error}") from error

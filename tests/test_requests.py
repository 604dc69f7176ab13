"""Invalid requests are refused before any work, naming the field and what is allowed; nothing is corrected."""
from __future__ import annotations

import pytest

from pipelines import AdapterInput, InvalidRequest
from pipelines.catalog import FAMILY_LIMITS
from pipelines.validation import validate_request
from PIL import Image

SHAPES = FAMILY_LIMITS["shapes"]


@pytest.mark.parametrize("changes, field, hint", [
    ({"width": 100}, "width", "multiple of 8"),
    ({"width": 56}, "width", "from 64 to 256"),
    ({"height": 264}, "height", "from 64 to 256"),
    ({"height": 128.0}, "height", "multiple of 8"),
    ({"steps": 0}, "steps", "from 1 to 150"),
    ({"steps": 151}, "steps", "from 1 to 150"),
    ({"steps": True}, "steps", "whole number"),
    ({"scheduler": "LCM", "steps": 51}, "steps", "from 1 to 50"),
    ({"guidance_scale": -0.5}, "guidance_scale", "from 0 to 30"),
    ({"guidance_scale": 30.5}, "guidance_scale", "from 0 to 30"),
    ({"guidance_scale": float("nan")}, "guidance_scale", "number"),
    ({"guidance_scale": "7"}, "guidance_scale", "number"),
    ({"num_images": 0}, "num_images", "from 1 to 8"),
    ({"num_images": 9}, "num_images", "from 1 to 8"),
    ({"seed": -2}, "seed", "-1"),
    ({"seed": 2**32}, "seed", "from 0 to"),
    ({"seed": 2**32 - 2, "num_images": 4}, "seed", "from 0 to"),
    ({"seed": 1.5}, "seed", "whole number"),
    ({"prompt": "x" * (SHAPES.max_prompt_chars + 1)}, "prompt", "at most"),
    ({"prompt": None}, "prompt", "text"),
    ({"negative_prompt": 3}, "negative_prompt", "text"),
    ({"scheduler": "Nope"}, "scheduler", "Euler a"),
    ({"adapter_conditioning_factor": 0.5}, "adapter_conditioning_factor", "SDXL"),
    ({"adapter_conditioning_factor": 1.5}, "adapter_conditioning_factor", "from 0 to 1"),
    ({"loras": [("style", 9.0)]}, "loras", "from -4 to 4"),
    ({"loras": [("", 1.0)]}, "loras", "path"),
])
def test_invalid_field_is_named(registry, small_request, changes, field, hint):
    request = small_request.with_(**changes)
    with pytest.raises(InvalidRequest) as caught:
        registry.generate(request)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ") and hint in str(caught.value)


def test_limits_follow_the_model_family(registry, small_request):
    validate_request(small_request.with_(width=1024, height=512), registry.model_info("sd15"))
    with pytest.raises(InvalidRequest) as caught:
        validate_request(small_request.with_(width=256, height=256), registry.model_info("sdxl"))
    assert caught.value.field == "width" and "512 to 2048" in str(caught.value)
    validate_request(small_request.with_(width=2048, height=1024, adapter_conditioning_factor=0.5),
                     registry.model_info("sdxl"))


def test_edges_of_the_ranges_are_accepted(registry, small_request):
    spec = registry.model_info("shapes")
    for changes in ({"width": 64, "height": 256}, {"steps": 1}, {"steps": 150}, {"guidance_scale": 0},
                    {"guidance_scale": 30}, {"num_images": 8}, {"seed": 0}, {"seed": 2**32 - 8, "num_images": 8},
                    {"scheduler": "LCM", "steps": 50}, {"prompt": ""}):
        validate_request(small_request.with_(**changes), spec)


def test_bad_adapter_weight_is_named(registry, small_request):
    adapter = AdapterInput("sketch", Image.new("RGB", (64, 64)), weight=-1.0)
    with pytest.raises(InvalidRequest) as caught:
        registry.generate(small_request.with_(adapters=[adapter]))
    assert caught.value.field == "adapters"


def test_preview_every_must_be_a_count(registry, small_request):
    with pytest.raises(InvalidRequest) as caught:
        registry.generate(small_request, preview_every=-1)
    assert caught.value.field == "preview_every"


def test_nothing_is_saved_for_an_invalid_request(fresh_registry, small_request):
    with pytest.raises(InvalidRequest):
        fresh_registry.generate(small_request.with_(width=65))
    assert not fresh_registry.outputs.root.exists() or not list(fresh_registry.outputs.root.rglob("*.png"))

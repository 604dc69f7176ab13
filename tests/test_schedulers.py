"""The scheduler registry: every entry makes an image, schedulers are fresh per request, names from other
studios resolve, and users can register their own."""
from __future__ import annotations

import pytest
from diffusers import DPMSolverMultistepScheduler, EulerDiscreteScheduler

from pipelines import GenerationRequest, InvalidRequest
from pipelines.schedulers import (SCHEDULERS, a1111_sampler_fields, build_scheduler, register_scheduler,
                                  resolve_scheduler_name, scheduler_names, suggested_steps)

REQUIRED = ["DDIM", "LMS", "Euler", "Euler a", "DPM++ 2M", "DPM++ 2M Karras", "DPM++ 2M SDE",
            "DPM++ 2M SDE Karras", "DPM2", "DPM2 a", "Heun", "LMS Karras", "PLMS", "UniPC", "DDPM", "DEIS", "LCM",
            "DPM++ SDE", "DPM++ SDE Karras", "DPM2 Karras", "DPM2 a Karras", "DPM++ 3M SDE"]


def test_registry_holds_the_common_samplers():
    assert set(REQUIRED) <= set(scheduler_names())
    assert all(1 <= suggested_steps(name) <= SCHEDULERS[name].max_steps for name in scheduler_names())


@pytest.mark.parametrize("name", scheduler_names())
def test_every_scheduler_makes_an_image_of_the_requested_size(registry, name):
    request = GenerationRequest(prompt="a small blue square", scheduler=name, steps=3, width=64, height=96, seed=3)
    result = registry.generate(request)
    assert [image.size for image in result.images] == [(64, 96)]
    assert result.items[0].request.scheduler == name


def test_overrides_do_not_leak_into_the_next_scheduler(registry):
    base = registry.load("shapes").base_scheduler_config
    before = dict(base)
    karras = build_scheduler("DPM++ 2M Karras", base)
    plain = build_scheduler("DPM++ 2M", base)
    assert karras.config.use_karras_sigmas is True
    assert plain.config.use_karras_sigmas is False
    assert karras is not plain
    assert dict(base) == before


def test_each_build_is_a_new_object_with_the_models_betas(registry):
    base = registry.load("shapes").base_scheduler_config
    first, second = build_scheduler("Euler", base), build_scheduler("Euler", base)
    assert first is not second
    assert first.config.beta_start == base["beta_start"] and first.config.beta_schedule == base["beta_schedule"]


@pytest.mark.parametrize("sampler, schedule, expected", [
    ("DPM++ 2M", "Karras", "DPM++ 2M Karras"),
    ("DPM++ 2M Karras", None, "DPM++ 2M Karras"),  # older combined names
    ("DPM++ 2M Karras", "Karras", "DPM++ 2M Karras"),
    ("DPM++ SDE Karras", None, "DPM++ SDE Karras"),
    ("LMS Karras", None, "LMS Karras"),
    ("DPM2 a Karras", None, "DPM2 a Karras"),
    ("DPM++ 2M SDE", "Karras", "DPM++ 2M SDE Karras"),
    ("DPM++ 3M SDE", "Exponential", "DPM++ 3M SDE Exponential"),
    ("Euler a", "Automatic", "Euler a"),
    ("euler a", None, "Euler a"),
    ("dpmpp_2m", "karras", "DPM++ 2M Karras"),  # ComfyUI
    ("euler_ancestral", "normal", None),
    ("dpmpp_2m_k", None, "DPM++ 2M Karras"),  # InvokeAI
    ("k_euler_a", None, "Euler a"),
])
def test_names_other_studios_write_resolve(sampler, schedule, expected):
    if expected is None:
        with pytest.raises(InvalidRequest) as caught:
            resolve_scheduler_name(sampler, schedule)
        assert caught.value.field == "scheduler" and "Automatic" in str(caught.value)
    else:
        assert resolve_scheduler_name(sampler, schedule) == expected


def test_unknown_scheduler_is_refused_with_the_names(registry, small_request):
    with pytest.raises(InvalidRequest) as caught:
        registry.generate(small_request.with_(scheduler="Warp drive"))
    assert caught.value.field == "scheduler"
    assert "DPM++ 2M Karras" in str(caught.value) and "Euler a" in str(caught.value)
    with pytest.raises(InvalidRequest):
        resolve_scheduler_name("DPM adaptive")


def test_a1111_fields_split_the_schedule_type():
    assert a1111_sampler_fields("DPM++ 2M Karras") == {"Sampler": "DPM++ 2M", "Schedule type": "Karras"}
    assert a1111_sampler_fields("Euler a") == {"Sampler": "Euler a"}


def test_a_registered_scheduler_is_listed_and_used(registry, small_request, monkeypatch):
    monkeypatch.setattr("pipelines.schedulers.SCHEDULERS", dict(SCHEDULERS))
    spec = register_scheduler("Euler trailing", EulerDiscreteScheduler, suggested_steps=12,
                              timestep_spacing="trailing")
    assert "Euler trailing" in scheduler_names() and suggested_steps("Euler trailing") == 12
    assert spec.overrides == {"timestep_spacing": "trailing"}
    built = build_scheduler("Euler trailing", registry.load("shapes").base_scheduler_config)
    assert built.config.timestep_spacing == "trailing"
    result = registry.generate(small_request.with_(scheduler="Euler trailing"))
    assert result.images[0].size == (64, 64)


def test_register_scheduler_refuses_what_is_not_a_scheduler(monkeypatch):
    monkeypatch.setattr("pipelines.schedulers.SCHEDULERS", dict(SCHEDULERS))
    with pytest.raises(TypeError):
        register_scheduler("Bogus", dict)


def test_sde_noise_is_seeded_by_the_request(registry, small_request):
    first = registry.generate(small_request.with_(scheduler="DPM++ SDE", seed=11)).images[0]
    again = registry.generate(small_request.with_(scheduler="DPM++ SDE", seed=11)).images[0]
    assert first.tobytes() == again.tobytes()
    multistep = build_scheduler("DPM++ 2M SDE Karras", registry.load("shapes").base_scheduler_config)
    assert isinstance(multistep, DPMSolverMultistepScheduler)
    assert multistep.config.algorithm_type == "sde-dpmsolver++"

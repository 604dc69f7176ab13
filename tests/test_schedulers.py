"""The sampler registry: A1111's names and schedule types, older combined names, names other studios write,
every entry making an image, and samplers users register themselves."""
from __future__ import annotations

import pytest
from diffusers import EulerDiscreteScheduler

from pipelines import GenerationRequest, InvalidRequest
from pipelines.schedulers import (SCHEDULERS, a1111_sampler_fields, build_scheduler, canonical_sampler,
                                  register_scheduler, resolve_sampler, schedule_type_names, scheduler_names,
                                  suggested_steps)

A1111_SAMPLERS = ["DPM++ 2M", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 2M SDE Heun", "DPM++ 2S a", "DPM++ 3M SDE",
                  "Euler a", "Euler", "LMS", "Heun", "DPM2", "DPM2 a", "DDIM", "PLMS", "UniPC", "LCM"]
# Every key the registry had before samplers and schedule types were split: they must keep working.
EARLIER_KEYS = ["Euler a", "Euler", "Euler Karras", "LMS", "LMS Karras", "Heun", "Heun Karras", "DPM2",
                "DPM2 Karras", "DPM2 a", "DPM2 a Karras", "DPM++ 2M", "DPM++ 2M Karras", "DPM++ 2M SDE",
                "DPM++ 2M SDE Karras", "DPM++ 2M SDE Exponential", "DPM++ 3M SDE", "DPM++ 3M SDE Karras",
                "DPM++ 3M SDE Exponential", "DPM++ SDE", "DPM++ SDE Karras", "DDIM", "PLMS", "UniPC", "DEIS",
                "DDPM", "LCM"]


def test_the_pickers_offer_a1111s_samplers_and_schedule_types():
    assert set(A1111_SAMPLERS) <= set(scheduler_names())
    assert not any(name.endswith((" Karras", " Exponential")) for name in scheduler_names())
    assert schedule_type_names() == ["Automatic", "Uniform", "Karras", "Exponential", "Polyexponential",
                                     "SGM Uniform", "KL Optimal", "Align Your Steps", "Simple", "Normal", "DDIM",
                                     "Beta"]
    assert all(1 <= suggested_steps(name) <= SCHEDULERS[name].max_steps for name in scheduler_names())


@pytest.mark.parametrize("sampler, schedule", [
    ("DPM++ 2M", "Karras"), ("DPM++ SDE", "Karras"), ("DPM2", "Karras"), ("DPM2 a", "Karras"),
    ("DPM++ 2S a", "Karras"), ("DPM++ 2M SDE", "Exponential"), ("DPM++ 3M SDE", "Exponential"),
    ("DPM++ 2M SDE Heun", "Exponential"), ("Euler a", "Uniform"), ("Euler", "Uniform"), ("LMS", "Uniform"),
    ("Heun", "Uniform")])
def test_automatic_is_a1111s_choice_per_sampler(sampler, schedule):
    assert resolve_sampler(sampler, "Automatic").schedule == schedule
    written = "Automatic" if schedule == "Uniform" else schedule  # A1111 writes the plain default so
    assert a1111_sampler_fields(sampler, "Automatic") == {"Sampler": sampler, "Schedule type": written}
    assert a1111_sampler_fields(sampler, "Uniform")["Schedule type"] == "Uniform"


def test_the_diffusers_form_samplers_take_no_schedule_type():
    assert resolve_sampler("DDIM").schedule is None
    assert a1111_sampler_fields("UniPC") == {"Sampler": "UniPC", "Schedule type": "Automatic"}
    with pytest.raises(InvalidRequest) as caught:
        resolve_sampler("DDIM", "Karras")
    assert caught.value.field == "schedule_type" and "Automatic" in str(caught.value)


@pytest.mark.parametrize("name", EARLIER_KEYS)
def test_every_earlier_key_still_resolves(name):
    resolved = resolve_sampler(name)
    assert resolved.name in scheduler_names()
    if name.endswith((" Karras", " Exponential")):
        assert resolved.schedule == name.rsplit(" ", 1)[1]


@pytest.mark.parametrize("sampler, schedule, expected", [
    ("DPM++ 2M", "Karras", ("DPM++ 2M", "Karras")),
    ("DPM++ 2M Karras", None, ("DPM++ 2M", "Karras")),  # older combined names
    ("DPM++ 2M Karras", "Karras", ("DPM++ 2M", "Karras")),
    ("LMS Karras", "Automatic", ("LMS", "Karras")),
    ("DPM++ 3M SDE", "Exponential", ("DPM++ 3M SDE", "Exponential")),
    ("Euler a", "Automatic", ("Euler a", "Uniform")),
    ("euler a", None, ("Euler a", "Uniform")),
    ("dpmpp_2m", "karras", ("DPM++ 2M", "Karras")),  # ComfyUI
    ("euler_ancestral", "normal", ("Euler a", "Normal")),
    ("dpmpp_2m_sde_gpu", "sgm_uniform", ("DPM++ 2M SDE", "SGM Uniform")),
    ("dpmpp_2m_k", None, ("DPM++ 2M", "Karras")),  # InvokeAI
    ("k_euler_a", None, ("Euler a", "Uniform")),
    ("ddim", "", ("DDIM", "Automatic")),
])
def test_names_other_studios_write_resolve(sampler, schedule, expected):
    assert canonical_sampler(sampler, schedule) == expected


@pytest.mark.parametrize("sampler, schedule, field", [
    ("Warp drive", "Automatic", "scheduler"), ("DPM adaptive", None, "scheduler"),
    ("Euler", "Wobbly", "schedule_type"), ("DPM++ 2M Karras", "Exponential", "schedule_type")])
def test_unknown_or_contradictory_names_are_refused(sampler, schedule, field):
    with pytest.raises(InvalidRequest) as caught:
        resolve_sampler(sampler, schedule)
    assert caught.value.field == field


def test_unknown_sampler_is_refused_with_the_names(registry, small_request):
    with pytest.raises(InvalidRequest) as caught:
        registry.generate(small_request.with_(scheduler="Warp drive"))
    assert caught.value.field == "scheduler"
    assert "DPM++ 2M" in str(caught.value) and "Euler a" in str(caught.value)


@pytest.mark.parametrize("name", scheduler_names())
def test_every_sampler_makes_an_image_of_the_requested_size(registry, name):
    request = GenerationRequest(prompt="a small blue square", scheduler=name, steps=3, width=64, height=96, seed=3)
    result = registry.generate(request)
    assert [image.size for image in result.images] == [(64, 96)]
    assert result.items[0].request.scheduler == name


def test_a_combined_name_is_its_sampler_on_its_schedule(registry, small_request):
    combined = registry.generate(small_request.with_(scheduler="DPM++ 2M Karras")).images[0]
    split = registry.generate(small_request.with_(scheduler="DPM++ 2M", schedule_type="Karras")).images[0]
    automatic = registry.generate(small_request.with_(scheduler="DPM++ 2M")).images[0]
    uniform = registry.generate(small_request.with_(scheduler="DPM++ 2M", schedule_type="Uniform")).images[0]
    assert combined.tobytes() == split.tobytes() == automatic.tobytes()
    assert uniform.tobytes() != automatic.tobytes()


def test_each_build_is_a_new_object_with_the_models_betas(registry):
    base = registry.load("shapes").base_scheduler_config
    before = dict(base)
    first, second = build_scheduler("DDIM", base), build_scheduler("DDIM", base)
    assert first is not second
    assert first.config.beta_start == base["beta_start"] and first.config.beta_schedule == base["beta_schedule"]
    assert dict(base) == before
    with pytest.raises(ValueError):
        build_scheduler("Euler", base)  # the studio's own sampler, not a diffusers scheduler


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


@pytest.mark.parametrize("name", ["DPM++ SDE", "DPM++ 2M SDE", "DPM++ 3M SDE", "Euler a"])
def test_stochastic_samplers_are_seeded_by_the_request(registry, small_request, name):
    first = registry.generate(small_request.with_(scheduler=name, seed=11)).images[0]
    again = registry.generate(small_request.with_(scheduler=name, seed=11)).images[0]
    other = registry.generate(small_request.with_(scheduler=name, seed=12)).images[0]
    assert first.tobytes() == again.tobytes() != other.tobytes()

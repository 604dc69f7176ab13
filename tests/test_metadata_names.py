"""Foreign sampler names -> AUTOMATIC1111's (sampler, schedule type), and what the writer puts in the text.

The expected A1111 names come from A1111 1.10's own tables (sd_samplers_kdiffusion.py aliases and default
schedulers, sd_schedulers.py labels), ComfyUI's KSampler lists, Stability Matrix's ComfySampler /
ComfyScheduler display names and InvokeAI's scheduler names.
"""
from __future__ import annotations

import pytest

from pipelines.metadata.names import AUTOMATIC_SCHEDULE, PLAIN, to_a1111
from pipelines.schedulers import SAMPLERS, a1111_sampler_fields


@pytest.mark.parametrize("sampler, scheduler, expected", [
    # ComfyUI sampler_name + scheduler (also SwarmUI, Fooocus, TensorArt's graphs)
    ("euler", "normal", ("Euler", "Normal")), ("euler_ancestral", "karras", ("Euler a", "Karras")),
    ("heun", "exponential", ("Heun", "Exponential")), ("dpm_2", "karras", ("DPM2", "Karras")),
    ("dpm_2_ancestral", "normal", ("DPM2 a", "Normal")), ("lms", "simple", ("LMS", "Simple")),
    ("dpm_fast", "normal", ("DPM fast", "Normal")), ("dpm_adaptive", "normal", ("DPM adaptive", "Normal")),
    ("dpmpp_2s_ancestral", "karras", ("DPM++ 2S a", "Karras")), ("dpmpp_sde", "karras", ("DPM++ SDE", "Karras")),
    ("dpmpp_sde_gpu", "karras", ("DPM++ SDE", "Karras")), ("dpmpp_2m", "sgm_uniform", ("DPM++ 2M", "SGM Uniform")),
    ("dpmpp_2m_sde", "exponential", ("DPM++ 2M SDE", "Exponential")),
    ("dpmpp_2m_sde_gpu", "karras", ("DPM++ 2M SDE", "Karras")), ("dpmpp_3m_sde", "exponential", ("DPM++ 3M SDE", "Exponential")),
    ("dpmpp_3m_sde_gpu", "beta", ("DPM++ 3M SDE", "Beta")), ("ddpm", "normal", ("DDPM", "Normal")),
    ("lcm", "sgm_uniform", ("LCM", "SGM Uniform")), ("ddim", "ddim_uniform", ("DDIM", "DDIM")),
    ("uni_pc", "kl_optimal", ("UniPC", "KL Optimal")), ("uni_pc_bh2", "normal", ("UniPC", "Normal")),
    ("deis", "beta", ("DEIS", "Beta")), ("euler", "align_your_steps", ("Euler", "Align Your Steps")),
    # no A1111 equivalent: as written
    ("heunpp2", "karras", ("heunpp2", "Karras")), ("euler_cfg_pp", "linear_quadratic", ("euler_cfg_pp", "linear_quadratic")),
    ("res_multistep", "normal", ("res_multistep", "Normal")),
])
def test_comfyui_names(sampler, scheduler, expected):
    assert to_a1111(sampler, scheduler) == expected


@pytest.mark.parametrize("name, expected", [
    # old A1111 combined names
    ("DPM++ 2M Karras", ("DPM++ 2M", "Karras")), ("LMS Karras", ("LMS", "Karras")),
    ("DPM2 a Karras", ("DPM2 a", "Karras")), ("DPM++ SDE Karras", ("DPM++ SDE", "Karras")),
    ("DPM++ 2M SDE Exponential", ("DPM++ 2M SDE", "Exponential")), ("DPM++ 2S a Karras", ("DPM++ 2S a", "Karras")),
    ("DPM++ 3M SDE Karras", ("DPM++ 3M SDE", "Karras")), ("DPM++ 2M SDE Heun Karras", ("DPM++ 2M SDE Heun", "Karras")),
    ("Euler a", ("Euler a", "Automatic")), ("DDIM", ("DDIM", "Automatic")), ("PLMS", ("PLMS", "Automatic")),
    ("k_dpmpp_2m", ("DPM++ 2M", "Automatic")), ("k_euler_a", ("Euler a", "Automatic")),
    # Stability Matrix: ComfyUI display name + scheduler display name
    ("Euler Ancestral Karras", ("Euler a", "Karras")), ("DPM++ 2M SDE GPU Exponential", ("DPM++ 2M SDE", "Exponential")),
    ("DPM 2 Ancestral Karras", ("DPM2 a", "Karras")), ("DPM++ 2S Ancestral Normal", ("DPM++ 2S a", "Normal")),
    ("DPM Fast SGM Uniform", ("DPM fast", "SGM Uniform")), ("UniPC DDIM Uniform", ("UniPC", "DDIM")),
    ("Euler AYS", ("Euler", "Align Your Steps")),
    # InvokeAI: "_k" is Karras
    ("dpmpp_2m_k", ("DPM++ 2M", "Karras")), ("euler_k", ("Euler", "Karras")), ("kdpm_2_a_k", ("DPM2 a", "Karras")),
    ("lms_k", ("LMS", "Karras")), ("heun_k", ("Heun", "Karras")), ("dpmpp_sde_k", ("DPM++ SDE", "Karras")),
    ("unipc_k", ("UniPC", "Karras")), ("euler_a", ("Euler a", "Automatic")), ("pndm", ("PLMS", "Automatic")),
    # NovelAI
    ("k_euler_ancestral", ("Euler a", "Automatic")), ("k_dpmpp_2s_ancestral", ("DPM++ 2S a", "Automatic")),
    ("ddim_v3", ("DDIM", "Automatic")),
    # unknown: as written
    ("nai_smea_dyn", ("nai_smea_dyn", "Automatic")), ("dpmpp_2s", ("dpmpp_2s", "Automatic")),
])
def test_combined_and_foreign_names(name, expected):
    assert to_a1111(name) == expected


@pytest.mark.parametrize("name, expected", [
    ("dpmpp_2m", ("DPM++ 2M", "Uniform")),  # A1111's Automatic would be Karras: say Uniform
    ("dpmpp_2m_k", ("DPM++ 2M", "Karras")), ("euler_a", ("Euler a", "Automatic")), ("ddim", ("DDIM", "Automatic")),
    ("kdpm_2", ("DPM2", "Uniform")), ("dpmpp_2m_sde", ("DPM++ 2M SDE", "Uniform")),
])
def test_plain_names_mean_evenly_spaced_sigmas(name, expected):
    assert to_a1111(name, unstated=PLAIN) == expected


def test_a_schedule_in_the_name_wins_over_a_stated_one():
    assert to_a1111("DPM++ 2M Karras", "Exponential") == ("DPM++ 2M", "Karras")  # as A1111's reader does


@pytest.mark.parametrize("scheduler, schedule_type, expected", [
    ("DPM++ 2M", "Automatic", {"Sampler": "DPM++ 2M", "Schedule type": "Karras"}),  # A1111 1.10 writes it resolved
    ("DPM++ 2M SDE", "Automatic", {"Sampler": "DPM++ 2M SDE", "Schedule type": "Exponential"}),
    ("DPM++ 2M", "Uniform", {"Sampler": "DPM++ 2M", "Schedule type": "Uniform"}),
    ("Euler a", "Automatic", {"Sampler": "Euler a", "Schedule type": "Automatic"}),  # A1111 writes p.scheduler
    ("Euler a", "Karras", {"Sampler": "Euler a", "Schedule type": "Karras"}),
    ("DDIM", "Automatic", {"Sampler": "DDIM", "Schedule type": "Automatic"}),
    ("UniPC", "Automatic", {"Sampler": "UniPC", "Schedule type": "Automatic"}),
    ("DPM++ 2M Karras", "Automatic", {"Sampler": "DPM++ 2M", "Schedule type": "Karras"}),  # today's combined names
    ("LMS Karras", "Automatic", {"Sampler": "LMS", "Schedule type": "Karras"}),
    ("Euler", "SGM Uniform", {"Sampler": "Euler", "Schedule type": "SGM Uniform"}),
])
def test_writer_schedule_type(scheduler, schedule_type, expected):
    assert a1111_sampler_fields(scheduler, schedule_type) == expected


def test_the_readers_defaults_are_the_registrys():
    """names.py keeps A1111's table of "Automatic" schedules for reading other files; it must agree with the
    schedules the studio's samplers use."""
    for name, spec in SAMPLERS.items():
        if spec.is_k_sampler:
            assert AUTOMATIC_SCHEDULE.get(name, "Uniform") == spec.automatic, name

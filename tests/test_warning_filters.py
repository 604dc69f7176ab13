"""pyproject's warning filters hide numpy's per-step deprecation flood from diffusers' DPM2/DEIS schedulers,
and nothing else: another deprecation from the same modules still shows."""
from __future__ import annotations

import tomllib
import warnings
from pathlib import Path

import pytest
import torch
from _pytest.config import parse_warning_filter

REPO = Path(__file__).resolve().parent.parent
FLOOD = "__array_wrap__ must accept context"
OTHER = "some other deprecation"


def project_filters() -> list[str]:
    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["pytest"]["ini_options"].get("filterwarnings", [])


def warnings_of_a_run(scheduler_name: str) -> list[str]:
    """Messages a few denoising steps raise under the project's filters alone."""
    import diffusers

    scheduler = getattr(diffusers, scheduler_name).from_pretrained(str(REPO / "assets" / "shapes"),
                                                                     subfolder="scheduler")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for text in project_filters():
            warnings.filterwarnings(*parse_warning_filter(text, escape=False))
        scheduler.set_timesteps(4)
        sample = torch.zeros(1, 4, 8, 8)
        for t in scheduler.timesteps:
            sample = scheduler.step(torch.zeros_like(sample), t, sample).prev_sample
        # Another deprecation from the same module must still get through.
        module = type(scheduler).__module__
        warnings.warn_explicit(OTHER, DeprecationWarning, module.replace(".", "/") + ".py", 1, module=module)
    return [str(w.message) for w in seen]


@pytest.mark.parametrize("scheduler_name", ["KDPM2DiscreteScheduler", "DEISMultistepScheduler"])
def test_the_flood_is_hidden_and_other_warnings_are_not(scheduler_name):
    messages = warnings_of_a_run(scheduler_name)
    assert not [m for m in messages if FLOOD in m]
    assert OTHER in messages

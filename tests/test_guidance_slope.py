"""training/shapes/guidance_slope.py, the README's explanation of why LMS and PLMS fail at CFG 7 here:
without guidance the guided slope is the conditional one; with it, lower than either branch's."""
import pytest
import torch

from pipelines.shapes.world import evaluation_prompts
from training.shapes.guidance_slope import mean_slopes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pipe():
    from diffusers import StableDiffusionPipeline

    from dreambooth_support import SHAPES

    return StableDiffusionPipeline.from_pretrained(str(SHAPES), dtype=torch.float32)


def test_without_guidance_the_guided_slope_is_the_conditional_one(pipe):
    prompts = [p for _, p in evaluation_prompts(2, seed=99)]
    for sigma, cond, uncond, guided, lowest in mean_slopes(pipe, prompts, guidance=1.0, steps=6):
        assert guided == pytest.approx(cond, abs=1e-4) and lowest <= guided + 1e-6


def test_guidance_pushes_back_against_the_latent_mean(pipe):
    """At CFG 7 and high noise the guided slope is negative (about -1: the stiffness LMS cannot take)."""
    prompts = [p for _, p in evaluation_prompts(8, seed=99)]
    high_noise = [row for row in mean_slopes(pipe, prompts, guidance=7.0, steps=20) if row[0] > 2.0]
    assert len(high_noise) >= 6
    assert all(guided < 0 and cond < uncond for _, cond, uncond, guided, _ in high_noise)
    assert sum(row[3] for row in high_noise) / len(high_noise) < -0.5


def test_calibration_matches_the_teachers_guidance_at_the_top_and_the_equivalent_below():
    from training.shapes.calibrate_guidance import matched_guidance

    t = torch.tensor([0, 700, 775, 850, 999])
    assert matched_guidance(t, 2.0, 7.0, (700.0, 850.0)).tolist() == pytest.approx([2.0, 2.0, 4.5, 7.0, 7.0])


def test_calibration_error_weights_the_outline_above_the_mean():
    from training.shapes.calibrate_guidance import structured_error

    mean_only = torch.ones(1, 4, 16, 16)
    outline = torch.zeros(1, 4, 16, 16)
    outline[..., ::2, :] = 1.0
    outline[..., 1::2, :] = -1.0  # zero mean, same squared size as mean_only
    assert structured_error(mean_only, 10.0).item() == pytest.approx(1.0)
    assert structured_error(outline, 10.0).item() == pytest.approx(10.0)

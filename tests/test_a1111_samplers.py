"""Every A1111 sampler name and schedule type computes what AUTOMATIC1111 1.10 computes: k-diffusion's own
`sampling.py` (fetched from PyPI, see kdiffusion_reference.py) run on A1111's sigma schedule, with A1111's
CompVis denoiser wrapper (fractional timesteps), initial noise scale and classifier-free guidance, on the
bundled model, from the same starting noise. The stochastic samplers get the same noise too (A1111's per-image
generator for the ancestral ones, the seeded Brownian tree for the SDE ones), so every image must match.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pipelines import GenerationRequest
from pipelines.schedulers import SAMPLERS
import kdiffusion_reference

PROMPT, NEGATIVE = "a large red circle in the top left on a blue background", "blurry"
SEED, STEPS, SIZE, CFG = 5, 6, 64, 7.0
# k-diffusion's Brownian tree makes torchsde warn about float rounding at the interval's ends (harmless)
pytestmark = pytest.mark.filterwarnings("ignore:Should have t[ab]:UserWarning")

# A1111 1.10, modules/sd_samplers_kdiffusion.py: sampler -> (k-diffusion function, options).
A1111_SAMPLERS = {
    "DPM++ 2M": ("sample_dpmpp_2m", {"scheduler": "Karras"}),
    "DPM++ SDE": ("sample_dpmpp_sde", {"scheduler": "Karras", "brownian": True}),
    "DPM++ 2M SDE": ("sample_dpmpp_2m_sde", {"scheduler": "Exponential", "brownian": True}),
    "DPM++ 2M SDE Heun": ("sample_dpmpp_2m_sde", {"scheduler": "Exponential", "brownian": True,
                                                  "solver_type": "heun"}),
    "DPM++ 2S a": ("sample_dpmpp_2s_ancestral", {"scheduler": "Karras"}),
    "DPM++ 3M SDE": ("sample_dpmpp_3m_sde", {"scheduler": "Exponential", "discard": True, "brownian": True}),
    "Euler a": ("sample_euler_ancestral", {}),
    "Euler": ("sample_euler", {}),
    "LMS": ("sample_lms", {}),
    "Heun": ("sample_heun", {}),
    "DPM2": ("sample_dpm_2", {"scheduler": "Karras", "discard": True}),
    "DPM2 a": ("sample_dpm_2_ancestral", {"scheduler": "Karras", "discard": True}),
}
SCHEDULES = ["Automatic", "Uniform", "Karras", "Exponential", "Polyexponential", "SGM Uniform", "KL Optimal",
             "Align Your Steps", "Simple", "Normal", "DDIM", "Beta"]


def a1111_schedule(label, n, model_wrap, sampling):
    """A1111 1.10's sd_schedulers.py, written against k-diffusion's DiscreteSchedule (the reference side)."""
    smin, smax = model_wrap.sigmas[0].item(), model_wrap.sigmas[-1].item()
    zero = lambda values: torch.cat([torch.as_tensor(values, dtype=torch.float32), torch.zeros(1)])
    t_range = lambda: (model_wrap.sigma_to_t(torch.tensor(smax)), model_wrap.sigma_to_t(torch.tensor(smin)))
    if label == "Uniform":
        return model_wrap.get_sigmas(n)
    if label == "Karras":
        return sampling.get_sigmas_karras(n, smin, smax)
    if label == "Exponential":
        return sampling.get_sigmas_exponential(n, smin, smax)
    if label == "Polyexponential":
        return sampling.get_sigmas_polyexponential(n, smin, smax)
    if label == "SGM Uniform":
        start, end = t_range()
        return zero([model_wrap.t_to_sigma(ts) for ts in torch.linspace(start, end, n + 1)[:-1]])
    if label == "Normal":
        start, end = t_range()
        return zero([model_wrap.t_to_sigma(ts) for ts in torch.linspace(start, end, n)])
    if label == "KL Optimal":
        a_min, a_max = torch.arctan(torch.tensor(smin)), torch.arctan(torch.tensor(smax))
        k = torch.arange(n + 1)
        return torch.tan(k / n * a_min + (1.0 - k / n) * a_max)
    if label == "Simple":
        ss = len(model_wrap.sigmas) / n
        return zero([float(model_wrap.sigmas[-(1 + int(x * ss))]) for x in range(n)])
    if label == "DDIM":
        ss = max(len(model_wrap.sigmas) // n, 1)
        return zero([float(model_wrap.sigmas[x]) for x in range(1, len(model_wrap.sigmas), ss)][::-1])
    if label == "Align Your Steps":
        levels = [14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029]
        ys = np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(levels)), np.log(levels[::-1]))
        return zero(np.exp(ys)[::-1].copy())
    if label == "Beta":
        from scipy import stats
        ts = [stats.beta.ppf(x, 0.6, 0.6) for x in 1 - np.linspace(0, 1, n)]
        return zero([smin + x * (smax - smin) for x in ts])
    raise KeyError(label)


class CountingUNet:
    """The shared UNet, counting its calls (each call is a guided pair of branches)."""

    def __init__(self, unet):
        self.unet, self.calls = unet, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.unet(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.unet, name)


class HijackedTorch:
    """What A1111 puts in place of k-diffusion's `torch`: randn_like draws from the image's own generator."""

    def __init__(self, generator):
        self.generator = generator

    def randn_like(self, x):
        return torch.randn(x.shape, generator=self.generator, dtype=x.dtype)

    def __getattr__(self, name):
        return getattr(torch, name)


@pytest.fixture(scope="module")
def reference(request, registry):
    sampling, external = kdiffusion_reference.load(request.config.cache.mkdir("k_diffusion"))
    loaded = registry.load("shapes")
    cond, uncond = kdiffusion_reference.diffusers_prompt_embeds(loaded, PROMPT, NEGATIVE)
    counting = CountingUNet(loaded.components["unet"])
    model_wrap = kdiffusion_reference.compvis_denoiser(external, loaded, counting)
    return sampling, model_wrap, cond, uncond, counting, loaded


def a1111_image(reference, sampler, schedule):
    sampling, model_wrap, cond, uncond, counting, loaded = reference
    function, options = A1111_SAMPLERS[sampler]
    label = options.get("scheduler", "Uniform") if schedule == "Automatic" else schedule
    n = STEPS + 1 if options.get("discard") else STEPS
    sigmas = a1111_schedule(label, n, model_wrap, sampling)
    if options.get("discard"):
        sigmas = torch.cat([sigmas[:-2], sigmas[-1:]])

    def cfg_denoiser(x, sigma, **_):  # A1111's CFGDenoiser for one prompt pair: [cond, uncond] in one batch
        out = model_wrap(torch.cat([x, x]), torch.cat([sigma, sigma]), cond=torch.cat([cond, uncond]))
        c, u = out.chunk(2)
        return u + (c - u) * CFG

    generator = torch.Generator().manual_seed(SEED)
    x = torch.randn((1, 4, SIZE // 8, SIZE // 8), generator=generator) * sigmas[0]
    kwargs = {}
    if options.get("brownian"):
        kwargs["noise_sampler"] = sampling.BrownianTreeNoiseSampler(x, sigmas[sigmas > 0].min(), sigmas.max(),
                                                                    seed=[SEED])
    if "solver_type" in options:
        kwargs["solver_type"] = options["solver_type"]
    counting.calls = 0
    sampling.torch = HijackedTorch(generator)
    try:
        with torch.inference_mode():
            latents = getattr(sampling, function)(cfg_denoiser, x, sigmas, extra_args={}, disable=True, **kwargs)
    finally:
        sampling.torch = torch
    from pipelines.previews import decode

    return decode(loaded.components["vae"], latents)[0], counting.calls, sigmas


def psnr(a, b) -> float:
    mse = np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255 ** 2 / mse)


def test_the_registry_offers_exactly_a1111s_k_samplers():
    assert {name for name, spec in SAMPLERS.items() if spec.is_k_sampler} == set(A1111_SAMPLERS)


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("sampler", list(A1111_SAMPLERS))
def test_studio_matches_a1111_on_k_diffusion(reference, registry, sampler, schedule):
    expected, expected_calls, sigmas = a1111_image(reference, sampler, schedule)
    counting, loaded = reference[4], reference[5]
    counting.calls = 0
    original = loaded.components["unet"]
    loaded.components["unet"] = counting  # count the studio's calls of the same weights
    try:
        result = registry.generate(GenerationRequest(prompt=PROMPT, negative_prompt=NEGATIVE, scheduler=sampler,
                                                     schedule_type=schedule, steps=STEPS, guidance_scale=CFG,
                                                     width=SIZE, height=SIZE, seed=SEED))
    finally:
        loaded.components["unet"] = original
    assert counting.calls == expected_calls, f"{sampler} / {schedule}: model calls"
    quality = psnr(result.images[0], expected)
    assert quality >= 45, f"{sampler} / {schedule}: PSNR {quality:.1f} dB against A1111 (sigmas {sigmas.tolist()})"

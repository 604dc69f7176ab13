"""DPM++ 3M SDE's step, checked against the exact step rather than against k-diffusion (which
test_a1111_samplers.py does): on a data prediction that is a quadratic in log-SNR the step's noise-free part
has an exact value, the integral of the SDE's drift, computed by quadrature. Its local error falls like h^3
(measured slope 2.94 from 20 to 160 steps), as the same multistep formula does for the ODE (eta 0, 2.97).
diffusers 0.42's own third-order SDE step, which the studio used before, had a wrong term and fell like h^2.5."""
import math

import torch
from scipy.integrate import quad

from pipelines.sampling import k_samplers

STEP_COUNTS = (20, 40, 80, 160)


class NoNoise:
    def ancestral(self, x):
        return torch.zeros_like(x)

    def brownian(self, sigma, sigma_next):
        return torch.zeros((1, 4, 2, 2), dtype=torch.float64)


def third_order_step_error(steps: int, eta: float) -> tuple[float, float]:
    """(h, |error|) of the first third-order step (the fourth), noise switched off."""
    sigmas = torch.linspace(math.log(14.6), math.log(0.03), steps, dtype=torch.float64).exp()
    sigmas = torch.cat([sigmas, sigmas.new_zeros(1)])
    last = 3
    centre = -math.log(float(sigmas[last]))
    x0 = lambda lam: 0.2 + 0.5 * (lam - centre) + 0.3 * (lam - centre) ** 2  # noqa: E731
    states = []
    denoise = lambda x, sigma: torch.full_like(x, x0(-math.log(float(sigma))))  # noqa: E731
    start = torch.full((1, 4, 2, 2), 0.3, dtype=torch.float64)
    sampler = k_samplers.dpmpp_3m_sde
    sampler(denoise, start, sigmas[: last + 2], NoNoise(), lambda i, x, d: states.append(x), eta=eta)
    before, after = float(states[last - 1].flatten()[0]), float(states[last].flatten()[0])
    s, t = -math.log(float(sigmas[last])), -math.log(float(sigmas[last + 1]))
    h = t - s
    if eta:  # the noise-free part of the SDE step: x_t = e^-2h x_s + int 2 e^-2(t-l) x0(l) dl
        exact = math.exp(-2 * h) * before + quad(lambda lam: 2 * math.exp(-2 * (t - lam)) * x0(lam), s, t)[0]
    else:
        exact = math.exp(-h) * before + quad(lambda lam: math.exp(-(t - lam)) * x0(lam), s, t)[0]
    return h, abs(after - exact)


def order(errors) -> float:
    """How fast the local error falls with h, from the first step count to the last."""
    (h0, e0), *_, (h1, e1) = errors
    return math.log(e0 / e1) / math.log(h0 / h1)


def test_the_sde_step_is_third_order():
    sde = [third_order_step_error(n, eta=1.0) for n in STEP_COUNTS]
    ode = [third_order_step_error(n, eta=0.0) for n in STEP_COUNTS]
    assert order(sde) > 2.8, sde
    assert order(ode) > 2.8, ode
    assert all(s <= 3 * o for (_, s), (_, o) in zip(sde, ode)), (sde, ode)

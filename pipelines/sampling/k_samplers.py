"""The k-diffusion sampler family (what AUTOMATIC1111 and ComfyUI run), written from the methods' equations.

Every sampler has one shape: `sampler(denoise, x, sigmas, noise, on_step) -> x`, where
- `denoise(x, sigma)` is the model's estimate of the clean latent at noise level sigma;
- `sigmas` is the schedule (decreasing, normally ending in 0), `x` starts as noise * sigmas[0];
- `noise.ancestral(x)` draws fresh standard-normal noise, `noise.brownian(s, s_next)` the normalised
  Brownian increment between two levels (the SDE samplers);
- `on_step(i, x, denoised)` is called once per step, after it (progress, previews, Stop).

Steps in "log-SNR time" use t = -log(sigma).
"""
from __future__ import annotations

from typing import Callable, Protocol

import numpy as np
import torch

Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
OnStep = Callable[[int, torch.Tensor, torch.Tensor], None]


class NoiseSource(Protocol):
    def ancestral(self, x: torch.Tensor) -> torch.Tensor: ...

    def brownian(self, sigma: torch.Tensor, sigma_next: torch.Tensor) -> torch.Tensor: ...


def _slope(x, sigma, denoised):
    """dx/dsigma of the probability-flow ODE."""
    return (x - denoised) / sigma


def ancestral_split(sigma, sigma_next, eta: float = 1.0):
    """(sigma_down, sigma_up): step deterministically down to sigma_down, then add noise of size sigma_up,
    so that the variance lands on sigma_next."""
    if not eta:
        return sigma_next, torch.zeros_like(sigma_next)
    up = torch.minimum(sigma_next, eta * (sigma_next ** 2 * (sigma ** 2 - sigma_next ** 2) / sigma ** 2) ** 0.5)
    return (sigma_next ** 2 - up ** 2) ** 0.5, up


def _log_midpoint(a, b):
    return a.log().lerp(b.log(), 0.5).exp()


@torch.no_grad()
def euler(denoise: Denoise, x, sigmas, noise: NoiseSource, on_step: OnStep):
    for i in range(len(sigmas) - 1):
        denoised = denoise(x, sigmas[i])
        x = x + _slope(x, sigmas[i], denoised) * (sigmas[i + 1] - sigmas[i])
        on_step(i, x, denoised)
    return x


@torch.no_grad()
def euler_ancestral(denoise: Denoise, x, sigmas, noise: NoiseSource, on_step: OnStep):
    for i in range(len(sigmas) - 1):
        denoised = denoise(x, sigmas[i])
        down, up = ancestral_split(sigmas[i], sigmas[i + 1])
        x = x + _slope(x, sigmas[i], denoised) * (down - sigmas[i])
        if sigmas[i + 1] > 0:
            x = x + noise.ancestral(x) * up
        on_step(i, x, denoised)
    return x


@torch.no_grad()
def heun(denoise: Denoise, x, sigmas, noise: NoiseSource, on_step: OnStep):
    """Second order (trapezoidal): an Euler step, corrected by the slope at its end."""
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma)
        slope = _slope(x, sigma, denoised)
        dt = sigma_next - sigma
        if sigma_next == 0:
            x = x + slope * dt
        else:
            guess = x + slope * dt
            slope_end = _slope(guess, sigma_next, denoise(guess, sigma_next))
            x = x + (slope + slope_end) / 2 * dt
        on_step(i, x, denoised)
    return x


@torch.no_grad()
def dpm_2(denoise: Denoise, x, sigmas, noise: NoiseSource, on_step: OnStep):
    """Second order midpoint method, the midpoint taken in log-sigma (Karras et al. 2022, DPM-Solver-2)."""
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma)
        slope = _slope(x, sigma, denoised)
        if sigma_next == 0:
            x = x + slope * (sigma_next - sigma)
        else:
            middle = _log_midpoint(sigma, sigma_next)
            half = x + slope * (middle - sigma)
            x = x + _slope(half, middle, denoise(half, middle)) * (sigma_next - sigma)
        on_step(i, x, denoised)
    return x


@torch.no_grad()
def dpm_2_ancestral(denoise: Denoise, x, sigmas, noise: NoiseSource, on_step: OnStep):
    for i in range(len(sigmas) - 1):
        sigma = sigmas[i]
        denoised = denoise(x, sigma)
        down, up = ancestral_split(sigma, sigmas[i + 1])
        slope = _slope(x, sigma, denoised)
        if down == 0:
            x = x + slope * (down - sigma)
        else:
            middle = _log_midpoint(sigma, down)
            half = x + slope * (middle - sigma)
            x = x + _slope(half, middle, denoise(half, middle)) * (down - sigma)
            x = x + noise.ancestral(x) * up
        on_step(i, x, denoised)
    return x


def _lms_weights(order: int, levels: np.ndarray, i: int) -> list[float]:
    """Adams-Bashforth weights on an uneven grid: the integral over [levels[i], levels[i+1]] of each
    Lagrange basis polynomial through the last `order` levels (exact polynomial integration)."""
    points = [levels[i - k] for k in range(order)]
    weights = []
    for j in range(order):
        basis = np.polynomial.Polynomial([1.0])
        for k in range(order):
            if k != j:
                basis = basis * np.polynomial.Polynomial([-points[k], 1.0]) / (points[j] - points[k])
        antiderivative = basis.integ()
        weights.append(float(antiderivative(levels[i + 1]) - antiderivative(levels[i])))
    return weights


@torch.no_grad()
def lms(denoise: Denoise, x, sigmas, noise: NoiseSource, on_step: OnStep, order: int = 4):
    """Linear multistep (Adams-Bashforth in sigma, up to fourth order)."""
    levels = sigmas.detach().cpu().double().numpy()
    slopes = []
    for i in range(len(sigmas) - 1):
        denoised = denoise(x, sigmas[i])
        slopes.append(_slope(x, sigmas[i], denoised))
        slopes = slopes[-order:]
        current = min(i + 1, order)
        weights = _lms_weights(current, levels, i)
        x = x + sum(w * s for w, s in zip(weights, reversed(slopes)))
        on_step(i, x, denoised)
    return x


def _t(sigma):
    return -sigma.log()


def _sigma(t):
    return (-t).exp()


@torch.no_grad()
def dpmpp_2s_ancestral(denoise: Denoise, x, sigmas, noise: NoiseSource, on_step: OnStep):
    """DPM-Solver++(2S), single-step second order, with ancestral noise."""
    for i in range(len(sigmas) - 1):
        sigma = sigmas[i]
        denoised = denoise(x, sigma)
        down, up = ancestral_split(sigma, sigmas[i + 1])
        if down == 0:
            x = x + _slope(x, sigma, denoised) * (down - sigma)
        else:
            t, t_next = _t(sigma), _t(down)
            h = t_next - t
            s = t + h / 2
            half = (_sigma(s) / _sigma(t)) * x - torch.expm1(-h / 2) * denoised
            denoised_half = denoise(half, _sigma(s))
            x = (_sigma(t_next) / _sigma(t)) * x - torch.expm1(-h) * denoised_half
        if sigmas[i + 1] > 0:
            x = x + noise.ancestral(x) * up
        on_step(i, x, denoised)
    return x


@torch.no_grad()
def dpmpp_sde(denoise: Denoise, x, sigmas, noise: NoiseSource, on_step: OnStep, eta: float = 1.0, r: float = 0.5):
    """DPM-Solver++ (stochastic): a second-order single step whose two halves each add Brownian noise."""
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma)
        if sigma_next == 0:
            x = x + _slope(x, sigma, denoised) * (sigma_next - sigma)
        else:
            t, t_next = _t(sigma), _t(sigma_next)
            s = t + (t_next - t) * r
            level, level_mid, level_next = _sigma(t), _sigma(s), _sigma(t_next)
            # to the intermediate level
            down, up = ancestral_split(level, level_mid, eta)
            s_down = _t(down)
            mid = (_sigma(s_down) / level) * x - torch.expm1(t - s_down) * denoised
            mid = mid + noise.brownian(level, level_mid) * up
            denoised_mid = denoise(mid, level_mid)
            # the full step with the blended estimate
            down, up = ancestral_split(level, level_next, eta)
            t_down = _t(down)
            blend = 1 / (2 * r)
            mixed = (1 - blend) * denoised + blend * denoised_mid
            x = (_sigma(t_down) / level) * x - torch.expm1(t - t_down) * mixed
            x = x + noise.brownian(level, level_next) * up
        on_step(i, x, denoised)
    return x


@torch.no_grad()
def dpmpp_2m(denoise: Denoise, x, sigmas, noise: NoiseSource, on_step: OnStep):
    """DPM-Solver++(2M): second-order multistep, exact in the linear part (data prediction)."""
    previous = None
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma)
        t, t_next = _t(sigma), _t(sigma_next)
        h = t_next - t
        if previous is None or sigma_next == 0:
            estimate = denoised
        else:
            ratio = (t - _t(sigmas[i - 1])) / h
            estimate = (1 + 1 / (2 * ratio)) * denoised - (1 / (2 * ratio)) * previous
        x = (_sigma(t_next) / _sigma(t)) * x - torch.expm1(-h) * estimate
        previous = denoised
        on_step(i, x, denoised)
    return x


@torch.no_grad()
def _dpmpp_2m_sde(denoise: Denoise, x, sigmas, noise: NoiseSource, on_step: OnStep, *, heun_correction: bool,
                  eta: float = 1.0):
    previous, h_previous = None, None
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma)
        if sigma_next == 0:
            x = denoised
        else:
            h = _t(sigma_next) - _t(sigma)
            eta_h = eta * h
            decay = -torch.expm1(-h - eta_h)
            x = (sigma_next / sigma) * torch.exp(-eta_h) * x + decay * denoised
            if previous is not None:
                difference = (denoised - previous) * (h / h_previous)
                if heun_correction:
                    x = x + (decay / (-h - eta_h) + 1) * difference
                else:
                    x = x + 0.5 * decay * difference
            if eta:
                x = x + noise.brownian(sigma, sigma_next) * sigma_next * (-torch.expm1(-2 * eta_h)).sqrt()
            h_previous = h
        previous = denoised
        on_step(i, x, denoised)
    return x


def dpmpp_2m_sde(denoise, x, sigmas, noise, on_step):
    """DPM-Solver++(2M) SDE, midpoint form."""
    return _dpmpp_2m_sde(denoise, x, sigmas, noise, on_step, heun_correction=False)


def dpmpp_2m_sde_heun(denoise, x, sigmas, noise, on_step):
    """DPM-Solver++(2M) SDE with the Heun-type second-order correction."""
    return _dpmpp_2m_sde(denoise, x, sigmas, noise, on_step, heun_correction=True)


@torch.no_grad()
def dpmpp_3m_sde(denoise: Denoise, x, sigmas, noise: NoiseSource, on_step: OnStep, eta: float = 1.0):
    """DPM-Solver++(3M) SDE: third-order multistep in log-SNR time, with Brownian noise."""
    d_1 = d_2 = h_1 = h_2 = None  # the two previous estimates and step sizes
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma)
        if sigma_next == 0:
            x = denoised
        else:
            h = _t(sigma_next) - _t(sigma)
            h_eta = h * (eta + 1)
            x = torch.exp(-h_eta) * x - torch.expm1(-h_eta) * denoised
            phi_2 = torch.expm1(-h_eta) / h_eta + 1
            if h_2 is not None:
                r0, r1 = h_1 / h, h_2 / h
                first_0 = (denoised - d_1) / r0
                first_1 = (d_1 - d_2) / r1
                first = first_0 + (first_0 - first_1) * r0 / (r0 + r1)
                second = (first_0 - first_1) / (r0 + r1)
                phi_3 = phi_2 / h_eta - 0.5
                x = x + phi_2 * first - phi_3 * second
            elif h_1 is not None:
                x = x + phi_2 * (denoised - d_1) / (h_1 / h)
            if eta:
                x = x + noise.brownian(sigma, sigma_next) * sigma_next * (-torch.expm1(-2 * h * eta)).sqrt()
            d_1, d_2 = denoised, d_1
            h_1, h_2 = h, h_1
        on_step(i, x, denoised)
    return x

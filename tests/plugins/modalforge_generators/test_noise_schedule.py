"""The diffusion forward process and DDIM/DDPM sampler against closed forms: the cosine and
linear schedules, ε/v conversions, exact recovery of a point mass and the moments of Gaussian
data under the exact conditional expectation."""

from __future__ import annotations

import math

import pytest
import torch

from modalforge_generators.noise_schedule import (
    NoiseSchedule,
    alphas_cumprod,
    ddim_sample,
    sampling_timesteps,
)


def test_cosine_schedule_is_the_closed_form():
    T, s = 1000, 0.008
    abar = alphas_cumprod(T, "cosine")

    def f(t: float) -> float:
        return math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2

    # below the β cap (0.999, reached only at the last steps) ᾱ_t = f(t+1)/f(0)
    for t in (0, 1, 10, 250, 500, 900, 990):
        assert abar[t].item() == pytest.approx(f(t + 1) / f(0), rel=1e-12)
    assert (abar[1:] < abar[:-1]).all()
    assert abar[0] > 0.9999 and abar[-1] < 1e-6


def test_linear_schedule_is_the_cumulative_product_of_ddpm_betas():
    abar = alphas_cumprod(1000, "linear")
    betas = [1e-4 + (0.02 - 1e-4) * i / 999 for i in range(1000)]
    expected = math.prod(1 - b for b in betas[:500])
    assert abar[499].item() == pytest.approx(expected, rel=1e-10)
    # fewer steps: βs scaled by 1000/T keep the end point comparable
    assert alphas_cumprod(100, "linear")[-1] < 1e-3


def test_sampling_timesteps_descend_evenly_to_zero():
    assert sampling_timesteps(1000, 1) == [999]
    assert sampling_timesteps(10, 10) == list(range(9, -1, -1))
    ts = sampling_timesteps(1000, 50)
    assert len(ts) == 50 and ts[0] == 999 and ts[-1] == 0
    assert all(a > b for a, b in zip(ts, ts[1:], strict=False))
    with pytest.raises(ValueError, match=r"\[1, 10\]"):
        sampling_timesteps(10, 11)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_split_inverts_the_training_target(prediction):
    sched = NoiseSchedule(1000, "cosine", prediction).double()
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(64, 3, generator=g).double(), torch.randn(64, 3, generator=g).double()
    t = torch.randint(0, 1000, (64,), generator=g)
    x_t = sched.add_noise(x0, eps, t)
    a = sched.abar[t].double()[:, None]
    torch.testing.assert_close(x_t, a.sqrt() * x0 + (1 - a).sqrt() * eps)
    x0_hat, eps_hat = sched.split(x_t, sched.target(x0, eps, t), t)
    torch.testing.assert_close(x0_hat, x0, rtol=0, atol=1e-6)
    torch.testing.assert_close(eps_hat, eps, rtol=0, atol=1e-6)
    torch.testing.assert_close(sched.noise_of(x_t, x0, t), eps, rtol=0, atol=1e-6)
    torch.testing.assert_close(sched.snr(t), sched.abar[t] / (1 - sched.abar[t]))


def _gaussian_oracle(sched: NoiseSchedule, mu: float, var: float):
    """The exact E[ε | x_t] (or E[v | x_t]) for data x_0 ~ N(mu, var)."""

    def predict(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = sched.abar[t].double()[:, None]
        total = a * var + 1 - a
        eps = (1 - a).sqrt() * (x - a.sqrt() * mu) / total
        if sched.prediction == "eps":
            return eps
        x0 = mu + a.sqrt() * var * (x - a.sqrt() * mu) / total
        return a.sqrt() * eps - (1 - a).sqrt() * x0

    return predict


def _noise(shape: tuple[int, ...], seed: int):
    g = torch.Generator().manual_seed(seed)
    return lambda: torch.randn(shape, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("prediction", ["eps", "v"])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_point_mass_is_recovered_exactly(prediction, eta):
    sched = NoiseSchedule(200, "cosine", prediction)
    target = torch.tensor([[0.25, -0.5, 0.75]], dtype=torch.float64)

    def predict(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = sched.abar[t].double()[:, None]
        eps = (x - a.sqrt() * target) / (1 - a).sqrt()
        return eps if prediction == "eps" else a.sqrt() * eps - (1 - a).sqrt() * target

    for steps in (1, 7, 200):
        out = ddim_sample(sched, predict, _noise((5, 3), steps), steps=steps, eta=eta)
        torch.testing.assert_close(out, target.expand(5, 3), rtol=0, atol=1e-9)


@pytest.mark.parametrize(("prediction", "eta"), [("eps", 0.0), ("v", 0.0), ("eps", 1.0)])
def test_gaussian_data_moments_are_reproduced(prediction, eta):
    """DDIM (deterministic) and DDPM (ancestral) over every step, with the exact conditional
    mean, turn N(0, 1) noise into N(mu, var) data."""
    mu, var = 0.3, 0.04
    sched = NoiseSchedule(1000, "cosine", prediction)
    oracle = _gaussian_oracle(sched, mu, var)
    out = ddim_sample(sched, oracle, _noise((20000, 1), 0), steps=1000, eta=eta, clip=None)
    assert out.mean().item() == pytest.approx(mu, abs=0.005)
    assert out.std().item() == pytest.approx(math.sqrt(var), rel=0.02)


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_coarse_ddim_shrinks_the_variance_exactly_as_its_closed_form(prediction):
    """With few steps DDIM is biased: from t to s it maps x_t − √ᾱ_t·mu linearly by
    c = (√(ᾱ_s ᾱ_t)·var + √((1 − ᾱ_s)(1 − ᾱ_t))) / V_t, V_t = ᾱ_t·var + 1 − ᾱ_t, and
    c²·V_t ≤ V_s (Cauchy–Schwarz); the last step returns x̂_0, scaling by √ᾱ_t·var / V_t."""
    mu, var, steps = 0.3, 0.04, 10
    sched = NoiseSchedule(1000, "cosine", prediction)
    out = ddim_sample(
        sched, _gaussian_oracle(sched, mu, var), _noise((40000, 1), 1), steps=steps, clip=None
    )
    abar = sched.abar.double()
    times = sampling_timesteps(1000, steps)
    offset, spread = -abar[times[0]].sqrt() * mu, 1.0  # x_T ~ N(0, 1) around √ᾱ_T·mu
    for t, s in zip(times, times[1:], strict=False):
        a_t, a_s = abar[t], abar[s]
        c = ((a_s * a_t).sqrt() * var + ((1 - a_s) * (1 - a_t)).sqrt()) / (a_t * var + 1 - a_t)
        offset, spread = c * offset, c * spread
    a = abar[times[-1]]
    k = a.sqrt() * var / (a * var + 1 - a)
    mean, std = mu + k * offset, k * spread
    assert std < 0.98 * math.sqrt(var)  # 10 steps: visibly too narrow
    assert out.mean().item() == pytest.approx(mean.item(), abs=0.003)
    assert out.std().item() == pytest.approx(std.item(), rel=0.01)


def test_clipping_bounds_the_prediction():
    sched = NoiseSchedule(100, "cosine", "eps")

    def wild(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return -10 * torch.ones_like(x)  # ε̂ = -10: x̂_0 far above 1

    out = ddim_sample(sched, wild, _noise((4, 2), 0), steps=5)
    assert out.max() <= 1.0 and out.min() >= -1.0
    assert torch.equal(out, torch.ones_like(out))  # the last step returns the clipped x̂_0


def test_stochastic_steps_need_noise():
    sched = NoiseSchedule(10)
    x = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="eta > 0 needs noise"):
        sched.step(x, x, x, 9, 5, 1.0, None)
    with pytest.raises(ValueError, match="unknown noise schedule"):
        alphas_cumprod(10, "quadratic")  # type: ignore[arg-type]

"""The forward (noising) process of a diffusion model and the DDIM/DDPM reverse step.

Discrete time ``t = 0 .. T-1``; ``ᾱ_t`` is the fraction of signal variance left at step ``t``:
``x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε``. The network predicts ``ε`` or ``v = √ᾱ_t · ε − √(1 − ᾱ_t)
· x_0`` (Salimans & Ho 2022); both give ``x_0`` and ``ε`` in closed form, which is all a
sampler needs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor, nn

Schedule = Literal["cosine", "linear"]
Prediction = Literal["eps", "v"]


def alphas_cumprod(timesteps: int, schedule: Schedule = "cosine") -> Tensor:
    """``ᾱ_t`` for ``t = 0 .. T-1`` in float64.

    ``cosine`` (Nichol & Dhariwal 2021): ``ᾱ_t = f(t+1) / f(0)``, ``f(t) = cos²((t/T + s) /
    (1 + s) · π/2)`` with ``s = 0.008``, each ``β_t`` capped at 0.999. ``linear`` (Ho et al.
    2020): ``β_t`` from ``1e-4`` to ``0.02`` scaled by ``1000/T``.
    """
    if timesteps < 2:
        raise ValueError(f"timesteps must be >= 2, got {timesteps}")
    if schedule == "cosine":
        s = 0.008
        t = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
        f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    elif schedule == "linear":
        scale = 1000.0 / timesteps
        betas = torch.linspace(1e-4 * scale, 0.02 * scale, timesteps, dtype=torch.float64)
    else:
        raise ValueError(f"unknown noise schedule {schedule!r}; use 'cosine' or 'linear'")
    return torch.cumprod(1.0 - betas, dim=0)


def sampling_timesteps(timesteps: int, steps: int) -> list[int]:
    """``steps`` evenly spaced training timesteps, descending from ``T-1`` (DDIM's sub-sequence)."""
    if not 1 <= steps <= timesteps:
        raise ValueError(f"steps must be in [1, {timesteps}], got {steps}")
    grid = torch.linspace(timesteps - 1, 0, steps, dtype=torch.float64).round().long()
    return [int(t) for t in grid]


class NoiseSchedule(nn.Module):
    """``ᾱ_t`` as a (non-persistent) buffer, the forward process and the reverse step."""

    def __init__(
        self, timesteps: int, schedule: Schedule = "cosine", prediction: Prediction = "eps"
    ) -> None:
        super().__init__()
        if prediction not in ("eps", "v"):
            raise ValueError(f"unknown prediction {prediction!r}; use 'eps' or 'v'")
        self.timesteps = timesteps
        self.prediction = prediction
        abar = alphas_cumprod(timesteps, schedule)
        self.register_buffer("abar", abar.float(), persistent=False)

    def _abar(self, t: Tensor, like: Tensor) -> Tensor:
        return self.abar[t].to(like.dtype).view(-1, *([1] * (like.dim() - 1)))

    def add_noise(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """``x_t`` for clean ``x0``, noise ``ε`` and per-sample steps ``t``."""
        a = self._abar(t, x0)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def target(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """What the network is trained to output: ``ε``, or ``v``."""
        if self.prediction == "eps":
            return noise
        a = self._abar(t, x0)
        return a.sqrt() * noise - (1 - a).sqrt() * x0

    def snr(self, t: Tensor) -> Tensor:
        """Signal-to-noise ratio ``ᾱ_t / (1 − ᾱ_t)`` per step."""
        a = self.abar[t]
        return a / (1 - a)

    def split(self, x_t: Tensor, output: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """``(x̂_0, ε̂)`` from the network's output at ``x_t``."""
        a = self._abar(t, x_t)
        if self.prediction == "eps":
            eps = output
            x0 = (x_t - (1 - a).sqrt() * eps) / a.sqrt()
        else:
            x0 = a.sqrt() * x_t - (1 - a).sqrt() * output
            eps = (1 - a).sqrt() * x_t + a.sqrt() * output
        return x0, eps

    def noise_of(self, x_t: Tensor, x0: Tensor, t: Tensor) -> Tensor:
        """The ``ε`` that takes ``x0`` to ``x_t`` at steps ``t`` (after clipping ``x̂_0``)."""
        a = self._abar(t, x_t)
        return (x_t - a.sqrt() * x0) / (1 - a).sqrt()

    def step(
        self,
        x_t: Tensor,
        x0: Tensor,
        eps: Tensor,
        t: int,
        t_next: int | None,
        eta: float,
        noise: Tensor | None,
    ) -> Tensor:
        """One DDIM step (Song et al. 2021) from ``t`` to ``t_next`` (``None``: to ``x_0``).

        ``x_s = √ᾱ_s · x̂_0 + √(1 − ᾱ_s − σ²) · ε̂ + σ · z`` with ``σ = η · √((1 − ᾱ_s)/(1 − ᾱ_t))
        · √(1 − ᾱ_t/ᾱ_s)``: ``eta = 0`` is deterministic DDIM, ``eta = 1`` with every step is
        DDPM's ancestral sampler. ``noise`` (``z``) is needed when ``σ > 0``.
        """
        if t_next is None:
            return x0
        a_t, a_s = self.abar[t].double(), self.abar[t_next].double()
        sigma = eta * ((1 - a_s) / (1 - a_t) * (1 - a_t / a_s)).clamp(min=0).sqrt()
        direction = (1 - a_s - sigma**2).clamp(min=0).sqrt()
        out = a_s.sqrt().to(x0.dtype) * x0 + direction.to(x0.dtype) * eps
        if float(sigma) > 0:
            if noise is None:
                raise ValueError("eta > 0 needs noise")
            out = out + sigma.to(x0.dtype) * noise
        return out


def ddim_sample(
    schedule: NoiseSchedule,
    predict: Callable[[Tensor, Tensor], Tensor],
    noise: Callable[[], Tensor],
    *,
    steps: int,
    eta: float = 0.0,
    clip: tuple[float, float] | None = (-1.0, 1.0),
) -> Tensor:
    """Run the reverse process from ``x_T = noise()`` over ``steps`` DDIM steps; returns ``x̂_0``.

    ``predict(x_t, t)`` is the network's output (``ε`` or ``v``, per ``schedule.prediction``)
    for a batch at the steps ``t`` (a long tensor); ``noise()`` draws a standard normal tensor
    of the sample shape (called once for ``x_T`` and once per stochastic step when
    ``eta > 0``). ``clip`` bounds ``x̂_0`` at every step, with ``ε̂`` recomputed to match.
    """
    x = noise()
    times = sampling_timesteps(schedule.timesteps, steps)
    for i, t in enumerate(times):
        t_next = times[i + 1] if i + 1 < len(times) else None
        tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
        x0, eps = schedule.split(x, predict(x, tt), tt)
        if clip is not None:
            x0 = x0.clamp(*clip)
            eps = schedule.noise_of(x, x0, tt)
        z = noise() if eta > 0 and t_next is not None else None
        x = schedule.step(x, x0, eps, t, t_next, eta, z)
    return x

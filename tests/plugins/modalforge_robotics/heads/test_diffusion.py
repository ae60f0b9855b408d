"""Diffusion Policy head: the loss against a hand computation of the ε-MSE, padding, binding,
deterministic / sampled DDIM, a tiny fit, and clear errors."""

from __future__ import annotations

import pytest
import torch

from modalforge.contracts import Target
from modalforge.errors import SpecError
from modalforge.pipeline.model import MultimodalModel
from modalforge_robotics.heads import (
    ACTION_PAD_KEY,
    ActionDiffusionLoss,
    DiffusionActionHead,
    MLPActionHead,
)

K, A = 4, 3
TARGET = Target("regression", K * A, shape=(K, A))


class _Identity(torch.nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _bound(head: DiffusionActionHead) -> ActionDiffusionLoss:
    loss = ActionDiffusionLoss(TARGET)
    loss.bind_model(MultimodalModel({"state": _Identity(head.in_dim)}, None, head))
    return loss


def test_loss_is_the_eps_mse_at_the_drawn_noise_and_step():
    torch.manual_seed(0)
    head = DiffusionActionHead(6, TARGET, timesteps=50, width=16, layers=1)
    for p in head.denoiser.out.parameters():  # a non-zero prediction (the output starts at zero)
        torch.nn.init.normal_(p)
    cond, y = torch.randn(5, 6), torch.rand(5, K, A) * 2 - 1
    per_step = head.diffusion_loss(cond, y, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    t = torch.randint(0, 50, (5,), generator=g)
    noise = torch.randn(5, K, A, generator=g)
    abar = head.schedule.abar[t].view(5, 1, 1)
    x_t = abar.sqrt() * y + (1 - abar).sqrt() * noise
    want = (head.denoiser(x_t, t, cond) - noise).square().mean(-1)
    torch.testing.assert_close(per_step, want)
    assert per_step.shape == (5, K) and per_step.min() > 0


def test_loss_reaches_the_denoiser_through_the_binding_and_ignores_padding():
    torch.manual_seed(0)
    head = DiffusionActionHead(6, TARGET, timesteps=20, width=16, layers=1)
    for p in head.denoiser.parameters():  # undo the zero init, so every input matters
        if not p.any():
            torch.nn.init.normal_(p, std=0.1)
    loss = _bound(head)
    assert not any(True for _ in loss.parameters())  # the denoiser stays the model's alone
    cond, y = torch.randn(4, 6, requires_grad=True), torch.rand(4, K, A) * 2 - 1
    out = loss({"action_cond": head(cond)}, {"target": y})
    out.total.backward()
    assert cond.grad is not None and cond.grad.abs().sum() > 0  # features get gradients too
    for name, p in head.named_parameters():
        assert p.grad is not None, name
    pad = torch.zeros(4, K, dtype=torch.bool)
    pad[1, 2:] = True
    torch.manual_seed(5)
    base = loss({"action_cond": cond}, {"target": y, ACTION_PAD_KEY: pad}).total
    torch.manual_seed(5)
    per_step = head.diffusion_loss(cond, y)
    torch.testing.assert_close(base, per_step[~pad].mean())


def test_act_is_deterministic_without_sample_and_seeded_with_it():
    torch.manual_seed(0)
    head = DiffusionActionHead(6, TARGET, timesteps=20, sampling_steps=5, width=16, layers=1)
    for p in head.denoiser.out.parameters():
        torch.nn.init.normal_(p, std=0.3)
    out = {"action_cond": torch.randn(3, 6)}
    first, second = head.act(out), head.act(out)
    assert first.shape == (3, K, A) and torch.equal(first, second)
    assert first.abs().max() <= 1
    a = head.act(out, sample=True, generator=torch.Generator().manual_seed(1))
    b = head.act(out, sample=True, generator=torch.Generator().manual_seed(1))
    c = head.act(out, sample=True, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_learns_a_fixed_mapping():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    weight = torch.randn(8, K * A, generator=g) / 8**0.5
    x = torch.randn(128, 8, generator=g)
    y = torch.tanh(1.5 * x @ weight).reshape(128, K, A)
    head = DiffusionActionHead(8, TARGET, timesteps=50, sampling_steps=10, width=64, layers=1)
    loss = _bound(head)
    opt = torch.optim.Adam(head.parameters(), lr=2e-3)
    values = []
    for _ in range(400):
        value = loss({"action_cond": x}, {"target": y}).total
        values.append(value.item())
        opt.zero_grad()
        value.backward()
        opt.step()
    head.eval()
    err = (head.act({"action_cond": x}) - y).abs().mean().item()
    early, late = sum(values[:20]) / 20, sum(values[-50:]) / 50
    assert late < 0.3 * early, (early, late)  # measured: 0.69 → 0.088
    assert err < 0.1, err  # measured: 0.060 (DDIM, 10 steps, from x_T = 0)


def test_unbound_or_mismatched_loss_and_bad_params_are_clear_errors():
    head = DiffusionActionHead(6, TARGET, width=8, layers=1)
    with pytest.raises(SpecError, match=r"loss: .*not bound") as info:
        ActionDiffusionLoss(TARGET)(
            {"action_cond": torch.zeros(2, 6)}, {"target": torch.zeros(2, K, A)}
        )
    assert "bind_model" in str(info.value)
    with pytest.raises(SpecError, match="head: diffusion_action"):
        ActionDiffusionLoss(TARGET).bind_model(MLPActionHead(6, TARGET))
    assert head(torch.ones(1, 6)).shape == (1, 6)
    for kwargs, field in [
        ({"timesteps": 1}, "timesteps"),
        ({"timesteps": 10, "sampling_steps": 11}, "sampling_steps"),
        ({"eta": 2.0}, "eta"),
        ({"schedule": "quadratic"}, "noise schedule"),
        ({"dropout": 1.0}, "dropout"),
    ]:
        with pytest.raises(SpecError, match=field):
            DiffusionActionHead(6, TARGET, **kwargs)

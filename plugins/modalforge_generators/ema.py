"""Exponential moving average of a module's weights (the generator used for sampling)."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn


class EMA(nn.Module):
    """An averaged copy of ``model``: ``ema ← d·ema + (1 − d)·θ`` after each update.

    With ``warmup`` the decay is ``d = min(decay, (1 + n) / (10 + n))`` for the ``n``-th update
    (``n`` from 0), so early weights (random init) are forgotten quickly in short runs. Buffers
    are copied. The copy and the update count are buffers/parameters of this module, hence in
    the state dict: checkpoints carry the average and resuming continues it exactly.
    """

    def __init__(self, model: nn.Module, decay: float, warmup: bool = True) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.warmup = warmup
        self.module = copy.deepcopy(model)
        self.module.requires_grad_(False)
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def current_decay(self) -> float:
        """The decay the next :meth:`update` applies."""
        if not self.warmup:
            return self.decay
        n = int(self.updates)
        return min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.current_decay()
        for e, p in zip(self.module.parameters(), model.parameters(), strict=True):
            e.lerp_(p.detach(), 1.0 - d)
        for e, b in zip(self.module.buffers(), model.buffers(), strict=True):
            e.copy_(b)
        self.updates += 1

    def forward(self, *args: Tensor) -> Tensor:
        return self.module(*args)

    def train(self, mode: bool = True) -> EMA:
        """The average is always used in eval mode."""
        super().train(False)
        return self

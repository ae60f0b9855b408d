"""Built-in learning-rate schedules, each a closed form of the optimizer step.

All start with the linear warm-up ``(step + 1) / train.warmup_steps``; decaying ones reach
``train.min_lr_ratio`` exactly at the last planned step ``total - 1`` and stay there.
"""

from __future__ import annotations

import math
from typing import Annotated, ClassVar

from pydantic import Field

from modalforge.contracts.optim import Scheduler
from modalforge.engine.config import TrainConfig


def warmup_factor(step: int, warmup: int) -> float | None:
    """``(step + 1) / warmup`` during the warm-up, else ``None``."""
    return (step + 1) / warmup if step < warmup else None


def _progress(step: int, warmup: int, total: int) -> float:
    """0 at the end of the warm-up, 1 at the last planned step ``total - 1`` and after it."""
    return min(1.0, (step - warmup) / max(1, total - 1 - warmup))


def warmup_cosine(step: int, *, warmup: int, total: int, min_ratio: float) -> float:
    """LR multiplier used for optimizer step ``step`` (0-based).

    Linear warm-up ``(step + 1) / warmup`` for the first ``warmup`` steps, then cosine decay from 1
    to ``min_ratio`` reached exactly at the last step ``total - 1``; constant afterwards.
    """
    up = warmup_factor(step, warmup)
    if up is not None:
        return up
    progress = _progress(step, warmup, total)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_linear(step: int, *, warmup: int, total: int, min_ratio: float) -> float:
    """Warm-up, then a straight line from 1 to ``min_ratio`` at step ``total - 1``."""
    up = warmup_factor(step, warmup)
    if up is not None:
        return up
    return 1.0 - (1.0 - min_ratio) * _progress(step, warmup, total)


class WarmupCosine(Scheduler):
    """Linear warm-up (``train.warmup_steps``), then cosine decay to ``train.min_lr_ratio``."""

    train_fields: ClassVar[frozenset[str]] = frozenset({"warmup_steps", "min_lr_ratio"})

    def factor(self, step: int, total_steps: int, train: TrainConfig) -> float:
        return warmup_cosine(
            step, warmup=train.warmup_steps, total=total_steps, min_ratio=train.min_lr_ratio
        )


class Linear(Scheduler):
    """Linear warm-up, then linear decay to ``train.min_lr_ratio`` at the last step."""

    train_fields: ClassVar[frozenset[str]] = frozenset({"warmup_steps", "min_lr_ratio"})

    def factor(self, step: int, total_steps: int, train: TrainConfig) -> float:
        return warmup_linear(
            step, warmup=train.warmup_steps, total=total_steps, min_ratio=train.min_lr_ratio
        )


class Constant(Scheduler):
    """``train.lr`` throughout, after an optional linear warm-up (``train.warmup_steps``)."""

    def factor(self, step: int, total_steps: int, train: TrainConfig) -> float:
        up = warmup_factor(step, train.warmup_steps)
        return 1.0 if up is None else up


class StepDecay(Scheduler):
    """After an optional warm-up, multiply the rate by ``gamma`` every ``step_size`` steps:
    ``gamma ** ((step - warmup_steps) // step_size)`` (``torch.optim.lr_scheduler.StepLR``)."""

    def __init__(
        self,
        step_size: Annotated[int, Field(gt=0)],
        gamma: Annotated[float, Field(gt=0, le=1)] = 0.1,
    ) -> None:
        self.step_size = int(step_size)
        self.gamma = float(gamma)

    def factor(self, step: int, total_steps: int, train: TrainConfig) -> float:
        up = warmup_factor(step, train.warmup_steps)
        if up is not None:
            return up
        return self.gamma ** ((step - train.warmup_steps) // self.step_size)

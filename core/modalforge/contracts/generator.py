"""Generator contract: models that sample and bring their own training step (a GAN has two)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from modalforge.engine.step import StepContext


class CustomTrainStep(ABC):
    """Mixin for models that drive their own optimisation; the engine calls these, not a loss."""

    @abstractmethod
    def configure_optimizers(
        self, lr: float, weight_decay: float
    ) -> dict[str, torch.optim.Optimizer]:
        """Named optimizers; the engine schedules, checkpoints and restores each."""

    @abstractmethod
    def training_step(self, batch: Mapping[str, Tensor], ctx: StepContext) -> dict[str, Tensor]:
        """One optimisation step using ``ctx.backward`` / ``ctx.step``; returns values to log."""


class Generator(CustomTrainStep, nn.Module):
    """Produces samples (images, actions, ...) from a condition (text embedding, class, ...)."""

    @abstractmethod
    def sample(
        self, condition: object, num_samples: int, generator: torch.Generator | None = None
    ) -> Tensor:
        """``num_samples`` samples per condition, reproducible given ``generator``."""

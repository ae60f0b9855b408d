"""Generator contract: models that sample and bring their own training step (a GAN has two)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

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
    """Produces samples (images, actions, ...) from a condition (text prompts, class, ...).

    Built from the spec with ``modalities`` and ``target`` of the data set and ``encoders``: the
    condition encoders named under ``model.encoders`` (e.g. a text encoder for prompts), which the
    generator owns as submodules. A raw condition modality (captions) is tokenized by its encoder's
    ``preprocess()``; a generator that tokenizes for itself (DALL·E's transformer reads text
    tokens) returns its tokenizer from :meth:`preprocess` instead.
    """

    def preprocess(self, modality: str) -> Callable[[Any], Tensor] | None:
        """Raw sample of ``modality`` → tensor, when no condition encoder is given for it."""
        return None

    @abstractmethod
    def sample(
        self, condition: object, num_samples: int, generator: torch.Generator | None = None
    ) -> Tensor:
        """``num_samples`` samples per condition, reproducible given ``generator``.

        Text-conditioned image generators take a sequence of P prompt strings and return images
        ``(P, num_samples, C, H, W)`` in the data set's value range (``[0, 1]`` for images).
        """

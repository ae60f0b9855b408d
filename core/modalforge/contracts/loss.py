"""Loss contract: model outputs and batch in, a total plus named parts out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field

from torch import Tensor, nn


@dataclass
class LossOutput:
    """``total`` is what is back-propagated; ``parts`` are logged (detached by the engine)."""

    total: Tensor
    parts: dict[str, Tensor] = field(default_factory=dict)


class Loss(nn.Module, ABC):
    """A training objective. May own parameters (e.g. a learnable temperature).

    Losses that compare samples across the batch (contrastive) must gather across data-parallel
    ranks themselves, so that users never have to.

    A loss that needs a part of the model it trains (a diffusion action head's denoiser, which
    the training loss runs on noised targets) defines ``bind_model(model)``: the pipeline builder
    calls it once with the built model. Keep the reference out of the loss's submodules, so the
    model's parameters are optimised and checkpointed once, as the model's.
    """

    @abstractmethod
    def forward(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> LossOutput: ...

    def after_optimizer_step(self) -> None:  # noqa: B027 - optional hook
        """Called by the engine after each optimizer step (e.g. to clamp a learnable scale)."""

"""Metric contract: accumulate over batches, then compute named numbers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

from torch import Tensor, nn


class Metric(ABC):
    """A stateful evaluation metric; ``compute`` returns ``{name: value}`` (one or more names)."""

    @abstractmethod
    def reset(self) -> None: ...

    def prepare(self, model: nn.Module) -> None:  # noqa: B027 - optional hook
        """Called once per evaluation pass, model in eval mode and no grad, before any update.

        Metrics that need the model itself (e.g. zero-shot classifiers built from class-name
        prompts with the text encoder) build what they need here.
        """

    @abstractmethod
    def update(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> None: ...

    @abstractmethod
    def compute(self) -> dict[str, float]: ...

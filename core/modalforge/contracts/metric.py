"""Metric contract: accumulate over batches, then compute named numbers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

from torch import Tensor


class Metric(ABC):
    """A stateful evaluation metric; ``compute`` returns ``{name: value}`` (one or more names)."""

    @abstractmethod
    def reset(self) -> None: ...

    @abstractmethod
    def update(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> None: ...

    @abstractmethod
    def compute(self) -> dict[str, float]: ...

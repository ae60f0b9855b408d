"""Head contract: a representation in, the task's outputs out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from torch import Tensor, nn


class Head(nn.Module, ABC):
    """Maps ``(B, in_dim)`` to the task's output, stored under ``output_key`` in the model outputs.

    Heads take ``in_dim`` (sized from the fusion or encoder) and, when the task has one, the
    data set's :class:`~modalforge.contracts.dataset.Target` as constructor arguments.
    """

    output_key: ClassVar[str] = "logits"

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.in_dim = in_dim

    @abstractmethod
    def forward(self, x: Tensor) -> Tensor: ...

"""Regression metrics: mean absolute error and root mean squared error (per output, averaged)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from torch import Tensor

from modalforge.contracts import Target
from modalforge_metrics.base import OutputMetric


class _ErrorSums(OutputMetric):
    """Per-output sums of absolute and squared errors, kept on the model's device."""

    def reset(self) -> None:
        self._abs: Tensor | None = None
        self._sq: Tensor | None = None
        self._count = 0

    def update(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> None:
        pred, y = self.inputs(outputs, batch)
        pred = pred.float().reshape(pred.shape[0], -1)
        err = pred - y.float().reshape(pred.shape)
        abs_sum, sq_sum = err.abs().sum(dim=0), err.square().sum(dim=0)
        self._abs = abs_sum if self._abs is None else self._abs + abs_sum
        self._sq = sq_sum if self._sq is None else self._sq + sq_sum
        self._count += int(pred.shape[0])


class MAE(_ErrorSums):
    """Mean absolute error, averaged over outputs (as ``sklearn.metrics.mean_absolute_error``)."""

    name = "mae"

    def __init__(self, target: Target | None = None, output_key: str = "prediction") -> None:
        super().__init__(output_key, target)

    def compute(self) -> dict[str, float]:
        if self._abs is None:
            return {self.name: math.nan}
        return {self.name: (self._abs / self._count).mean().item()}


class RMSE(_ErrorSums):
    """RMSE per output, averaged (as ``sklearn.metrics.root_mean_squared_error``)."""

    name = "rmse"

    def __init__(self, target: Target | None = None, output_key: str = "prediction") -> None:
        super().__init__(output_key, target)

    def compute(self) -> dict[str, float]:
        if self._sq is None:
            return {self.name: math.nan}
        return {self.name: (self._sq / self._count).sqrt().mean().item()}

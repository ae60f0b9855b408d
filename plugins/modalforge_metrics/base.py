"""Shared parts: reading a model output and the target from a batch, naming what is missing."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from modalforge.contracts import TARGET_KEY, Metric, Target, TargetKind
from modalforge.errors import DataError, SpecError


class OutputMetric(Metric):
    """A metric of one model output (``output_key``) against the batch's target."""

    name = ""

    def __init__(self, output_key: str, target: Target | None) -> None:
        self.output_key = output_key
        self.target = target
        self.reset()

    def inputs(
        self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]
    ) -> tuple[Tensor, Tensor]:
        if self.output_key not in outputs:
            raise SpecError(
                "metrics",
                f"metric {self.name!r} reads model output {self.output_key!r}, but the model gives "
                f"{', '.join(map(repr, outputs))}",
                hint="set the metric's output_key param, or pick a metric for this head",
            )
        if TARGET_KEY not in batch:
            raise DataError(f"metric {self.name!r} needs labelled data ({TARGET_KEY!r} in batches)")
        return outputs[self.output_key].detach(), batch[TARGET_KEY].detach()

    def is_multilabel(self, logits: Tensor, y: Tensor) -> bool:
        if self.target is not None:
            return self.target.kind == TargetKind.MULTILABEL
        return y.shape == logits.shape and logits.ndim == 2 and logits.shape[1] > 1


class Collecting(OutputMetric):
    """Keeps each batch's (prediction, target) on its device; moved to the host in compute."""

    def reset(self) -> None:
        self._preds: list[Tensor] = []
        self._targets: list[Tensor] = []

    def update(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> None:
        pred, y = self.inputs(outputs, batch)
        self._preds.append(pred.float())
        self._targets.append(y)

    def collected(self) -> tuple[Tensor, Tensor] | None:
        if not self._preds:
            return None
        return torch.cat(self._preds).cpu(), torch.cat(self._targets).cpu()

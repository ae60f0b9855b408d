"""Supervised losses reading one model output (``output_key``) and the batch's ``target``."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from modalforge.contracts import TARGET_KEY, Loss, LossOutput, Target, TargetKind
from modalforge.errors import DataError, SpecError


def _check_kind(loss: str, target: Target | None, kinds: tuple[TargetKind, ...], hint: str) -> None:
    if target is not None and target.kind not in kinds:
        raise SpecError(
            "loss",
            f"{loss} is for {' or '.join(str(k) for k in kinds)} targets, but the data set's "
            f"target is {target.kind}",
            hint=hint,
        )


def _weights(name: str, values: list[float] | None, target: Target | None) -> Tensor | None:
    if values is None:
        return None
    if target is not None and len(values) != target.num_outputs:
        raise SpecError(
            f"loss.params.{name}",
            f"has {len(values)} values, but the target has {target.num_outputs} outputs",
            hint=f"give one value per class ({target.num_outputs})",
        )
    if any(v < 0 for v in values):
        raise SpecError(f"loss.params.{name}", f"must not be negative, got {values}")
    return torch.tensor(values, dtype=torch.float32)


class _SupervisedLoss(Loss):
    """Common part: find the prediction and the target, name the missing one."""

    name = ""

    def __init__(self, output_key: str) -> None:
        super().__init__()
        self.output_key = output_key

    def _inputs(
        self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]
    ) -> tuple[Tensor, Tensor]:
        if self.output_key not in outputs:
            raise SpecError(
                "loss.params.output_key",
                f"{self.name} reads model output {self.output_key!r}, but the model gives "
                f"{', '.join(map(repr, outputs))}",
                hint="set output_key to the head's output (classification: logits, regression: "
                "prediction), or change the head",
            )
        if TARGET_KEY not in batch:
            raise DataError(
                f"{self.name} needs a {TARGET_KEY!r} in each batch, but the data set has no labels",
                hint="use a labelled data set (data.dataset) for a supervised loss",
            )
        return outputs[self.output_key], batch[TARGET_KEY]


class CrossEntropyLoss(_SupervisedLoss):
    """Softmax cross-entropy on class logits, with optional label smoothing and class weights."""

    name = "cross_entropy"

    def __init__(
        self,
        target: Target | None = None,
        label_smoothing: float = 0.0,
        class_weights: list[float] | None = None,
        output_key: str = "logits",
    ) -> None:
        super().__init__(output_key)
        _check_kind(
            self.name,
            target,
            (TargetKind.MULTICLASS,),
            "use `loss: bce_with_logits` for multilabel, `loss: mse` for regression",
        )
        if not 0.0 <= label_smoothing < 1.0:
            raise SpecError(
                "loss.params.label_smoothing", f"must be in [0, 1), got {label_smoothing}"
            )
        self.label_smoothing = label_smoothing
        self.register_buffer("class_weights", _weights("class_weights", class_weights, target))

    def forward(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> LossOutput:
        logits, y = self._inputs(outputs, batch)
        y = y.reshape(-1).long()
        loss = F.cross_entropy(
            logits.float(), y, weight=self.class_weights, label_smoothing=self.label_smoothing
        )
        return LossOutput(loss, {self.name: loss})


class BCEWithLogitsLoss(_SupervisedLoss):
    """Per-output sigmoid cross-entropy for multilabel targets (0/1 per class)."""

    name = "bce_with_logits"

    def __init__(
        self,
        target: Target | None = None,
        pos_weight: list[float] | None = None,
        output_key: str = "logits",
    ) -> None:
        super().__init__(output_key)
        _check_kind(
            self.name,
            target,
            (TargetKind.MULTILABEL,),
            "use `loss: cross_entropy` for multiclass targets, `loss: mse` for regression",
        )
        self.register_buffer("pos_weight", _weights("pos_weight", pos_weight, target))

    def forward(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> LossOutput:
        logits, y = self._inputs(outputs, batch)
        y = y.reshape(logits.shape).to(logits.dtype)
        loss = F.binary_cross_entropy_with_logits(
            logits.float(), y.float(), pos_weight=self.pos_weight
        )
        return LossOutput(loss, {self.name: loss})


class MSELoss(_SupervisedLoss):
    """Mean squared error of ``prediction`` against a real-valued target."""

    name = "mse"

    def __init__(self, target: Target | None = None, output_key: str = "prediction") -> None:
        super().__init__(output_key)
        _check_kind(
            self.name, target, (TargetKind.REGRESSION,), "use `loss: cross_entropy` for classes"
        )

    def forward(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> LossOutput:
        pred, y = self._inputs(outputs, batch)
        loss = F.mse_loss(pred.float(), y.reshape(pred.shape).float())
        return LossOutput(loss, {self.name: loss})

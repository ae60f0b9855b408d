"""Classification metrics on logits: top-k accuracy, macro F1 and ROC AUC (scikit-learn)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping

import numpy as np
import torch
from torch import Tensor

from modalforge.contracts import Target
from modalforge_metrics.base import Collecting, OutputMetric


class Accuracy(OutputMetric):
    """Top-1 accuracy (plus top-``k`` if ``top_k``); multilabel: exact match at logit 0.

    Counts accumulate on the model's device, so evaluation does not sync per batch.
    """

    name = "accuracy"

    def __init__(
        self, target: Target | None = None, top_k: int | None = None, output_key: str = "logits"
    ) -> None:
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        if top_k is not None and target is not None and top_k > target.num_outputs:
            raise ValueError(f"top_k={top_k} exceeds the {target.num_outputs} classes")
        self.top_k = top_k
        super().__init__(output_key, target)

    def reset(self) -> None:
        self._correct: Tensor | None = None
        self._correct_k: Tensor | None = None
        self._total = 0

    def update(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> None:
        logits, y = self.inputs(outputs, batch)
        if self.is_multilabel(logits, y):
            correct = ((logits > 0) == (y > 0.5)).all(dim=1).sum()
            correct_k = None
        else:
            y = y.reshape(-1).long()
            correct = (logits.argmax(dim=1) == y).sum()
            correct_k = None
            if self.top_k is not None:
                top = logits.topk(min(self.top_k, logits.shape[1]), dim=1).indices
                correct_k = (top == y.unsqueeze(1)).any(dim=1).sum()
        self._correct = correct if self._correct is None else self._correct + correct
        if correct_k is not None:
            self._correct_k = correct_k if self._correct_k is None else self._correct_k + correct_k
        self._total += int(logits.shape[0])

    def compute(self) -> dict[str, float]:
        if self._total == 0 or self._correct is None:
            return {self.name: math.nan}
        out = {self.name: self._correct.item() / self._total}
        if self.top_k is not None:
            hits = self._correct_k.item() if self._correct_k is not None else math.nan
            out[f"top{self.top_k}_{self.name}"] = hits / self._total
        return out


class MacroF1(Collecting):
    """Unweighted mean of per-class F1 (``sklearn.metrics.f1_score(average="macro")``)."""

    name = "macro_f1"

    def __init__(self, target: Target | None = None, output_key: str = "logits") -> None:
        super().__init__(output_key, target)

    def compute(self) -> dict[str, float]:
        from sklearn.metrics import f1_score

        got = self.collected()
        if got is None:
            return {self.name: math.nan}
        logits, y = got
        if self.is_multilabel(logits, y):
            pred, true = (logits > 0).int().numpy(), (y > 0.5).int().numpy()
        else:
            pred, true = logits.argmax(dim=1).numpy(), y.reshape(-1).long().numpy()
        return {self.name: float(f1_score(true, pred, average="macro", zero_division=0))}


class RocAuc(Collecting):
    """ROC AUC from scikit-learn: binary, one-vs-rest macro for multiclass, macro for multilabel.

    ``nan`` where it is undefined (a class absent from the evaluated targets).
    """

    name = "roc_auc"

    def __init__(self, target: Target | None = None, output_key: str = "logits") -> None:
        super().__init__(output_key, target)

    def compute(self) -> dict[str, float]:
        from sklearn.exceptions import UndefinedMetricWarning
        from sklearn.metrics import roc_auc_score

        got = self.collected()
        if got is None:
            return {self.name: math.nan}
        logits, y = got
        with warnings.catch_warnings():  # undefined AUC: newer scikit-learn warns and gives nan
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            try:
                score = self._score(roc_auc_score, logits, y)
            except ValueError:  # older scikit-learn: only one class present
                return {self.name: math.nan}
        return {self.name: float(score)}

    def _score(self, roc_auc_score: Callable[..., float], logits: Tensor, y: Tensor) -> float:
        if self.is_multilabel(logits, y):
            return roc_auc_score((y > 0.5).int().numpy(), torch.sigmoid(logits).numpy())
        labels = y.reshape(-1).long().numpy()
        if logits.ndim == 1 or logits.shape[1] == 1:
            return roc_auc_score(labels, logits.reshape(-1).numpy())
        if logits.shape[1] == 2:
            return roc_auc_score(labels, torch.softmax(logits, dim=1)[:, 1].numpy())
        prob = torch.softmax(logits.double(), dim=1).numpy()
        return roc_auc_score(labels, prob, multi_class="ovr", labels=np.arange(logits.shape[1]))

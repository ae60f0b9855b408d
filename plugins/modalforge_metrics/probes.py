"""``linear_probe`` and ``svm_probe``: how linearly separable the frozen embeddings are.

Design: a metric sees only the split being evaluated (the builder injects the data set's
``target``, not the data set), so these probes are *cross-validated on the evaluated split's
features*: stratified k-fold (``folds``, seeded), where each fold is predicted by a probe fitted on
the other folds, with ``C`` chosen by a sweep on a validation part carved from those folds (see
:func:`modalforge.evaluation.cross_validated_probe`). The result is the out-of-fold accuracy; for a
multi-label target (findings), one binary probe per label and its out-of-fold ROC-AUC
(:func:`modalforge.evaluation.cross_validated_probe_auc`).
Features are L2-normalised first, as in the CLIP paper. For the classic train-split → test-split
probe, call :func:`modalforge.evaluation.linear_probe` with features of both splits.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import torch
from torch import Tensor

from modalforge.contracts import Metric, Target, TargetKind
from modalforge.evaluation import DEFAULT_CS, cross_validated_probe, cross_validated_probe_auc
from modalforge.evaluation.probes import ProbeKind
from modalforge_metrics.embedding import read_label_matrix, read_labels, read_output


class _Probe(Metric):
    name = ""
    kind: ProbeKind = "logistic"

    def __init__(
        self,
        target: Target | None = None,
        output_key: str = "embed.image",
        folds: int = 5,
        cs: tuple[float, ...] = DEFAULT_CS,
        seed: int = 0,
    ) -> None:
        if target is not None and target.kind not in (TargetKind.MULTICLASS, TargetKind.MULTILABEL):
            raise ValueError(
                f"a probe needs a multiclass or multilabel target, the data set's is {target}"
            )
        if folds < 2:
            raise ValueError(f"folds must be at least 2, got {folds}")
        if not cs or min(cs) <= 0:
            raise ValueError(f"cs must be positive, got {list(cs)}")
        self.output_key = output_key
        self.folds = folds
        self.cs = tuple(cs)
        self.seed = seed
        self.multilabel = target is not None and target.kind == TargetKind.MULTILABEL
        count = target.num_outputs if target is not None else 0
        self.label_names = list(target.class_names if target else ()) or [
            str(i) for i in range(count)
        ]
        self.reset()

    def reset(self) -> None:
        self._features: list[Tensor] = []
        self._labels: list[Tensor] = []

    def update(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> None:
        self._features.append(read_output(outputs, self.output_key, self.name, "output_key"))
        if self.multilabel:
            self._labels.append(read_label_matrix(batch, self.name))
        else:
            self._labels.append(read_labels(batch, self.name))

    def compute(self) -> dict[str, float]:
        if self.multilabel:
            return self._compute_auc()
        key = f"{self.name}_acc"
        if not self._features:
            return {key: math.nan}
        x = torch.cat([f.float().cpu() for f in self._features])
        y = torch.cat([t.cpu() for t in self._labels])
        try:
            result = cross_validated_probe(
                x, y, kind=self.kind, folds=self.folds, cs=self.cs, seed=self.seed
            )
        except ValueError as exc:  # e.g. one class only in this split
            warnings.warn(f"modalforge: {self.name} is undefined here: {exc}", stacklevel=2)
            return {key: math.nan}
        return {key: result.accuracy}

    def _compute_auc(self) -> dict[str, float]:
        """Multi-label: ``<name>_auc/<label>`` and ``<name>_auc_macro`` (out-of-fold ROC-AUC)."""
        keys = [f"{self.name}_auc/{n}" for n in self.label_names] + [f"{self.name}_auc_macro"]
        if not self._features:
            return dict.fromkeys(keys, math.nan)
        x = torch.cat([f.float().cpu() for f in self._features])
        y = torch.cat([t.cpu() for t in self._labels])
        try:
            result = cross_validated_probe_auc(
                x, y, kind=self.kind, folds=self.folds, cs=self.cs, seed=self.seed
            )
        except ValueError as exc:  # a label with too few positives in this split
            names = ", ".join(self.label_names)
            warnings.warn(
                f"modalforge: {self.name} ({names}) is undefined here: {exc}", stacklevel=2
            )
            return dict.fromkeys(keys, math.nan)
        return dict(zip(keys, [*result.per_label, result.macro], strict=True))


class LinearProbe(_Probe):
    """Cross-validated logistic-regression probe on frozen embeddings → ``linear_probe_acc``.

    k-fold over the evaluated split's features (see the module docstring), ``C`` swept from
    ``cs`` on a validation part of each training fold; L-BFGS, at most 1,000 iterations.
    """

    name = "linear_probe"
    kind: ProbeKind = "logistic"


class SvmProbe(_Probe):
    """Cross-validated linear SVM probe (``LinearSVC``) on frozen embeddings → ``svm_probe_acc``."""

    name = "svm_probe"
    kind: ProbeKind = "svm"

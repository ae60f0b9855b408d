"""Probes for multi-label targets: one binary probe per label, scored by ROC-AUC — fitted on a
training split and scored on a test split (:func:`probe_auc`, the CLIP paper's protocol), or
cross-validated within one split (:func:`cross_validated_probe_auc`).

A multi-label target (findings) has no single accuracy; what a clinical reader asks of frozen
embeddings is how well each finding ranks. Each label gets its own stratified k-fold: every fold
is scored by a binary probe (``C`` chosen as in :func:`cross_validated_probe`) fitted on the
other folds, and the out-of-fold decision values of all samples give that label's ROC-AUC.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from modalforge.evaluation.probes import (
    DEFAULT_CS,
    ArrayLike,
    ProbeKind,
    _choose_c,
    _features,
    _make,
)


@dataclass(frozen=True)
class ProbeAucResult:
    """Out-of-fold ROC-AUC per label, their mean, and the ``C`` chosen for each fit."""

    per_label: tuple[float, ...]
    macro: float
    chosen_c: tuple[float, ...]


def cross_validated_probe_auc(
    x: ArrayLike,
    y: ArrayLike,
    *,
    kind: ProbeKind = "logistic",
    folds: int = 5,
    cs: Sequence[float] = DEFAULT_CS,
    val_fraction: float = 0.2,
    seed: int = 0,
    max_iter: int = 1000,
) -> ProbeAucResult:
    """Per-label out-of-fold ROC-AUC of binary probes on ``x`` for a 0/1 matrix ``y`` (N, L).

    ``folds`` is capped by each label's rarer class and must stay at least 2: a label with
    fewer than 2 positives (or negatives) raises ``ValueError`` naming its column.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    feats = _features(x)
    labels = _label_matrix(y, len(feats), "labels")
    aucs, chosen = [], []
    for col in range(labels.shape[1]):
        target = labels[:, col]
        rarer = int(min(target.sum(), len(target) - target.sum()))
        k = min(folds, rarer)
        if k < 2:
            raise ValueError(
                f"label {col} has {rarer} sample(s) of its rarer class; a cross-validated probe "
                "needs at least 2 positives and 2 negatives"
            )
        scores = np.zeros(len(target))
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        for train_idx, test_idx in splitter.split(feats, target):
            c = _choose_c(
                kind, feats[train_idx], target[train_idx], cs, val_fraction, seed, max_iter
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model = _make(kind, c, seed, max_iter).fit(feats[train_idx], target[train_idx])
            scores[test_idx] = model.decision_function(feats[test_idx])
            chosen.append(c)
        aucs.append(float(roc_auc_score(target, scores)))
    return ProbeAucResult(tuple(aucs), float(np.mean(aucs)), tuple(chosen))


def probe_auc(
    train_x: ArrayLike,
    train_y: ArrayLike,
    test_x: ArrayLike,
    test_y: ArrayLike,
    *,
    kind: ProbeKind = "logistic",
    cs: Sequence[float] = DEFAULT_CS,
    val_fraction: float = 0.2,
    seed: int = 0,
    max_iter: int = 1000,
) -> ProbeAucResult:
    """Per-label test ROC-AUC of binary probes fitted on the training features, for 0/1 label
    matrices ``(N, L)``; each label's ``C`` is swept on a validation part of the training split
    (as :func:`~modalforge.evaluation.fit_probe`), then the probe is refitted on all of it."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import roc_auc_score

    x, xt = _features(train_x), _features(test_x)
    y, yt = (
        _label_matrix(train_y, len(x), "train labels"),
        _label_matrix(test_y, len(xt), "test labels"),
    )
    if x.shape[1] != xt.shape[1] or y.shape[1] != yt.shape[1]:
        raise ValueError(
            f"train and test differ: features {x.shape[1]} vs {xt.shape[1]}, "
            f"labels {y.shape[1]} vs {yt.shape[1]}"
        )
    aucs, chosen = [], []
    for col in range(y.shape[1]):
        for name, labels in (("train", y[:, col]), ("test", yt[:, col])):
            if labels.min() == labels.max():
                raise ValueError(
                    f"label {col} has only {'positives' if labels[0] else 'negatives'} in the "
                    f"{name} split, so its probe's ROC-AUC is undefined"
                )
        c = _choose_c(kind, x, y[:, col], cs, val_fraction, seed, max_iter)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = _make(kind, c, seed, max_iter).fit(x, y[:, col])
        aucs.append(float(roc_auc_score(yt[:, col], model.decision_function(xt))))
        chosen.append(c)
    return ProbeAucResult(tuple(aucs), float(np.mean(aucs)), tuple(chosen))


def _label_matrix(y: ArrayLike, n: int, what: str) -> np.ndarray:
    """``y`` as a 0/1 ``(n, labels)`` int matrix, or a ``ValueError`` naming ``what``."""
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    labels = (np.asarray(y, dtype=np.float64) > 0.5).astype(int)
    if labels.ndim != 2 or len(labels) != n:
        raise ValueError(f"{what} must be (count={n}, labels), got shape {labels.shape}")
    return labels

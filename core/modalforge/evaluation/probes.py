"""Linear and SVM probes on frozen features (scikit-learn, imported when a probe runs).

As in the CLIP paper's linear-probe evaluation, features are L2-normalised and a logistic
regression (L-BFGS, at most 1,000 iterations) is fitted; its inverse regularisation ``C`` is chosen
by a small sweep on a validation part carved from the training features, then the probe is refitted
on all training features with that ``C`` and scored on the test features. Everything is seeded,
so the same features always give the same accuracy.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

#: The ``C`` values tried. Among equally good values the one nearest 1 (scikit-learn's default)
#: on a log scale wins, then the smaller: with a handful of validation samples ties are common,
#: and the most regularised value would let unbalanced intercepts decide every prediction.
DEFAULT_CS: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0)

ProbeKind = Literal["logistic", "svm"]
ArrayLike = Any  # Tensor, ndarray or nested sequence


@dataclass(frozen=True)
class ProbeResult:
    """Test accuracy of a probe, the ``C`` chosen for each fit, and the sample counts."""

    accuracy: float
    chosen_c: tuple[float, ...]
    num_train: int
    num_test: int


def _features(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be 2-D (count, dim), got shape {x.shape}")
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def _labels(y: ArrayLike, n: int) -> np.ndarray:
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y).reshape(-1)
    if len(y) != n:
        raise ValueError(f"{len(y)} labels for {n} feature rows")
    return y


def _make(kind: ProbeKind, c: float, seed: int, max_iter: int):  # noqa: ANN202
    if kind == "logistic":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=c, max_iter=max_iter)
    if kind == "svm":
        from sklearn.svm import LinearSVC

        return LinearSVC(C=c, max_iter=max_iter, random_state=seed)
    raise ValueError(f"unknown probe kind {kind!r}; use 'logistic' or 'svm'")


def _fit_score(kind, c, seed, max_iter, x, y, xt, yt) -> float:  # noqa: ANN001
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = _make(kind, c, seed, max_iter).fit(x, y)
    return float((model.predict(xt) == yt).mean())


def _choose_c(
    kind: ProbeKind,
    x: np.ndarray,
    y: np.ndarray,
    cs: Sequence[float],
    val_fraction: float,
    seed: int,
    max_iter: int,
) -> float:
    """The ``C`` with the best validation accuracy (ties: nearest 1 in log scale, then smaller)."""
    cs = sorted(cs)
    if len(cs) == 1:
        return float(cs[0])
    fallback = float(min(cs, key=lambda c: (abs(np.log(c)), c)))
    from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

    _, counts = np.unique(y, return_counts=True)
    n_val = int(round(len(y) * val_fraction))
    if n_val < 1 or len(y) - n_val < 2:
        return fallback
    stratify = counts.min() >= 2 and n_val >= len(counts) and len(y) - n_val >= len(counts)
    splitter = (StratifiedShuffleSplit if stratify else ShuffleSplit)(
        n_splits=1, test_size=n_val, random_state=seed
    )
    fit_idx, val_idx = next(splitter.split(x, y))
    if len(np.unique(y[fit_idx])) < 2:
        return fallback
    scores = [
        _fit_score(kind, c, seed, max_iter, x[fit_idx], y[fit_idx], x[val_idx], y[val_idx])
        for c in cs
    ]
    best = max(scores)
    tied = [c for c, score in zip(cs, scores, strict=True) if score == best]
    return float(min(tied, key=lambda c: (abs(np.log(c)), c)))


def fit_probe(
    kind: ProbeKind,
    train_x: ArrayLike,
    train_y: ArrayLike,
    test_x: ArrayLike,
    test_y: ArrayLike,
    *,
    cs: Sequence[float] = DEFAULT_CS,
    val_fraction: float = 0.2,
    seed: int = 0,
    max_iter: int = 1000,
) -> ProbeResult:
    """Sweep ``C`` on a validation part of the training features, refit, score on the test."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    if not cs or any(c <= 0 for c in cs):
        raise ValueError(f"cs must be non-empty and positive, got {list(cs)}")
    x, xt = _features(train_x), _features(test_x)
    y, yt = _labels(train_y, len(x)), _labels(test_y, len(xt))
    if x.shape[1] != xt.shape[1]:
        raise ValueError(f"train features have dim {x.shape[1]}, test features {xt.shape[1]}")
    if len(np.unique(y)) < 2:
        raise ValueError("a probe needs training features of at least two classes")
    c = _choose_c(kind, x, y, cs, val_fraction, seed, max_iter)
    acc = _fit_score(kind, c, seed, max_iter, x, y, xt, yt) if len(xt) else float("nan")
    return ProbeResult(acc, (c,), len(x), len(xt))


def linear_probe(
    train_x: ArrayLike,
    train_y: ArrayLike,
    test_x: ArrayLike,
    test_y: ArrayLike,
    **kwargs: Any,
) -> ProbeResult:
    """Logistic-regression probe (the CLIP paper's linear probe); see :func:`fit_probe`."""
    return fit_probe("logistic", train_x, train_y, test_x, test_y, **kwargs)


def svm_probe(
    train_x: ArrayLike,
    train_y: ArrayLike,
    test_x: ArrayLike,
    test_y: ArrayLike,
    **kwargs: Any,
) -> ProbeResult:
    """Linear SVM probe (``sklearn.svm.LinearSVC``); see :func:`fit_probe`."""
    return fit_probe("svm", train_x, train_y, test_x, test_y, **kwargs)


def cross_validated_probe(
    x: ArrayLike,
    y: ArrayLike,
    *,
    kind: ProbeKind = "logistic",
    folds: int = 5,
    cs: Sequence[float] = DEFAULT_CS,
    val_fraction: float = 0.2,
    seed: int = 0,
    max_iter: int = 1000,
) -> ProbeResult:
    """Out-of-fold accuracy of a probe over one set of features (stratified k-fold).

    Each fold is scored by a probe fitted (with its own ``C`` sweep) on the other folds; the
    result is the fraction of all samples predicted correctly. ``folds`` is capped by the size of
    the smallest class, and must stay at least 2. ``num_train`` and ``num_test`` of the result
    are both the number of samples (each is used for training and, once, for testing).
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    feats = _features(x)
    labels = _labels(y, len(feats))
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        raise ValueError("a probe needs features of at least two classes")
    k = min(folds, int(counts.min()))
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    if k < 2:  # a class with a single sample: plain k-fold, that class may be unseen in a fold
        k = min(folds, len(labels))
        splitter = KFold(n_splits=k, shuffle=True, random_state=seed)
    if k < 2:
        raise ValueError(f"cross-validation needs at least 2 samples, got {len(labels)}")
    correct, chosen = 0.0, []
    for train_idx, test_idx in splitter.split(feats, labels):
        if len(np.unique(labels[train_idx])) < 2:
            continue  # cannot fit; counts as wrong for this fold's samples
        res = fit_probe(
            kind,
            feats[train_idx],
            labels[train_idx],
            feats[test_idx],
            labels[test_idx],
            cs=cs,
            val_fraction=val_fraction,
            seed=seed,
            max_iter=max_iter,
        )
        correct += res.accuracy * len(test_idx)
        chosen.append(res.chosen_c[0])
    return ProbeResult(correct / len(labels), tuple(chosen), len(labels), len(labels))

"""Weighted binary-classification statistics, one value per row of a case-weight matrix.

Each function takes ``w`` of shape ``(b, n)`` (how often each of ``n`` cases counts in each of
``b`` resamples; a row of ones is the plain estimate) and returns ``(b,)`` values. Weighting by
counts gives exactly what scikit-learn gives on the resampled rows, ties included, so one call
evaluates a whole chunk of bootstrap resamples without a Python loop over them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Slack when comparing an operating point's false-positive rate with 1 - specificity, so that
# e.g. 10 false positives out of 100 negatives count as specificity 0.9.
RATE_TOL = 1e-9


@dataclass(frozen=True)
class Ranking:
    """One score column sorted once (descending), with its groups of tied scores."""

    order: np.ndarray  # case indices, highest score first
    starts: np.ndarray  # first position of each group of equal scores in ``order``
    positive: np.ndarray  # float 0/1 labels in ``order``

    @classmethod
    def of(cls, scores: np.ndarray, labels: np.ndarray) -> Ranking:
        order = np.argsort(-scores, kind="stable")
        s = scores[order]
        starts = np.concatenate([[0], np.flatnonzero(s[1:] != s[:-1]) + 1])
        return cls(order, starts, labels[order].astype(np.float64))


@dataclass(frozen=True)
class Curve:
    """Weighted positives/negatives per tied-score group, and their running sums (thresholds
    from the highest score down): the ROC and precision-recall curves of each resample."""

    pos: np.ndarray  # (b, groups)
    neg: np.ndarray
    tp: np.ndarray  # cumulative
    fp: np.ndarray
    tied: bool  # some group holds more than one case

    @classmethod
    def of(cls, ranking: Ranking, w: np.ndarray) -> Curve:
        ws = w[:, ranking.order]
        pos = ws * ranking.positive
        tied = ranking.starts.size < ranking.order.size
        if tied:  # one group per distinct score
            pos = np.add.reduceat(pos, ranking.starts, axis=1)
            ws = np.add.reduceat(ws, ranking.starts, axis=1)
        tp = np.cumsum(pos, axis=1)
        return cls(pos, ws - pos, tp, np.cumsum(ws, axis=1) - tp, tied)

    @property
    def n_pos(self) -> np.ndarray:
        return self.tp[:, -1]

    @property
    def n_neg(self) -> np.ndarray:
        return self.fp[:, -1]


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def roc_auc(c: Curve) -> np.ndarray:
    """P(score of a positive > score of a negative) + ½ P(tie): the area under the ROC curve."""
    # negatives scored strictly lower than each group: n_neg - fp, plus half of its own ties
    # (without ties a group is one case, so it holds no positive and negative weight together)
    above = c.fp - 0.5 * c.neg if c.tied else c.fp
    num = c.n_pos * c.n_neg - (c.pos * above).sum(axis=1)
    return _div(num, c.n_pos * c.n_neg)


def average_precision(c: Curve) -> np.ndarray:
    """Σ (recall step) × precision over thresholds (``sklearn.metrics.average_precision_score``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(c.pos > 0, c.tp / np.maximum(c.tp + c.fp, 1e-300), 0.0)
    return _div((c.pos * precision).sum(axis=1), c.n_pos)


def sensitivity_at_specificity(c: Curve, specificity: float) -> np.ndarray:
    """The highest true-positive rate over ROC operating points whose specificity is at least
    ``specificity`` (false-positive rate ≤ 1 - specificity); no interpolation between points.
    The point "call nobody positive" (rate 0) is always allowed."""
    allowed = c.fp <= (1.0 - specificity) * c.n_neg[:, None] + RATE_TOL * c.n_neg[:, None]
    best_tp = np.where(allowed, c.tp, 0.0).max(axis=1)
    return _div(best_tp, c.n_pos)


@dataclass(frozen=True)
class Confusion:
    """Weighted confusion counts of fixed predictions, one set per resample."""

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    tn: np.ndarray

    @classmethod
    def of(cls, labels: np.ndarray, predicted: np.ndarray, w: np.ndarray) -> Confusion:
        y, p = labels.astype(np.float64), predicted.astype(np.float64)
        tp, fp, fn = w @ (y * p), w @ ((1 - y) * p), w @ (y * (1 - p))
        return cls(tp, fp, fn, w.sum(axis=1) - tp - fp - fn)

    def sensitivity(self) -> np.ndarray:
        return _div(self.tp, self.tp + self.fn)

    def specificity(self) -> np.ndarray:
        return _div(self.tn, self.tn + self.fp)

    def f1(self) -> np.ndarray:
        """``2TP / (2TP + FP + FN)``; 0 where nothing is positive or predicted positive."""
        den = 2 * self.tp + self.fp + self.fn
        return np.where(den > 0, _div(2 * self.tp, den), 0.0)


def calibration_bins(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bin of each confidence in [0, 1]: ``[i/n, (i+1)/n)``, the last bin closed."""
    return np.clip(np.floor(confidence * n_bins).astype(np.int64), 0, n_bins - 1)


def expected_calibration_error(
    confidence: np.ndarray, outcome: np.ndarray, n_bins: int, w: np.ndarray
) -> np.ndarray:
    """``Σ_bins (n_bin / n) |mean outcome - mean confidence|`` with equal-width bins.

    ``outcome`` is 1 where the event the confidence is about happened (the case was positive, or
    the top-label prediction was right)."""
    onehot = np.zeros((confidence.size, n_bins))
    onehot[np.arange(confidence.size), calibration_bins(confidence, n_bins)] = 1.0
    gap = w @ (onehot * (outcome.astype(np.float64) - confidence)[:, None])
    return _div(np.abs(gap).sum(axis=1), w.sum(axis=1))

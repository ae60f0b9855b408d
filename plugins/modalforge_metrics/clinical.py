"""The table a clinical paper reports, each number with a bootstrap confidence interval.

ROC-AUC, average precision, sensitivity and specificity at a probability threshold,
sensitivity at fixed specificities, F1 and expected calibration error for binary, multi-class
(one-vs-rest per class) and multi-label (per label) outputs. :func:`clinical_report` works on
saved probabilities; the ``clinical`` metric converts a model's logits and calls it.

Keys (all floats): a statistic ``S`` is ``S`` for a binary task, else ``S/<class>`` per class
plus ``S_macro`` (unweighted mean over classes); every number ``K`` has ``K_ci_low`` and
``K_ci_high``; ``bootstrap_used`` counts the resamples behind the intervals. ``ece`` is one
number per task (plus ``ece/<label>`` for multi-label).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Literal

import numpy as np
import torch
from pydantic import Field

from modalforge.contracts import Target, TargetKind
from modalforge.errors import DataError
from modalforge_metrics.base import Collecting
from modalforge_metrics.bootstrap import case_counts, percentile_interval, resample_indices
from modalforge_metrics.clinical_stats import (
    Confusion,
    Curve,
    Ranking,
    average_precision,
    expected_calibration_error,
    roc_auc,
    sensitivity_at_specificity,
)

Report = Literal["auc", "ap", "sens_spec", "sens_at_spec", "f1", "ece"]
REPORTS: tuple[Report, ...] = ("auc", "ap", "sens_spec", "sens_at_spec", "f1", "ece")
Task = Literal["binary", "multiclass", "multilabel"]
Unit = Annotated[float, Field(gt=0, lt=1)]


@dataclass(frozen=True)
class Problem:
    """Probabilities and labels as one-vs-rest columns (one column for a binary task)."""

    task: Task
    names: tuple[str, ...]  # one per column
    labels: np.ndarray  # (n, k) 0/1
    scores: np.ndarray  # (n, k) probability of each column's positive class
    predicted: np.ndarray  # (n, k) bool: threshold (binary, multilabel) or argmax (multiclass)
    confidence: np.ndarray  # (n, m) what calibration is measured on (m = 1, or k multilabel)
    outcome: np.ndarray  # (n, m) 1 where that confidence's event happened
    strata: np.ndarray | None  # class of each case (binary, multiclass)

    @property
    def n(self) -> int:
        return int(self.labels.shape[0])

    def columns(self, keep: np.ndarray) -> Problem:
        multilabel = self.task == "multilabel"
        return replace(
            self,
            names=tuple(np.asarray(self.names, dtype=object)[keep]),
            labels=self.labels[:, keep],
            scores=self.scores[:, keep],
            predicted=self.predicted[:, keep],
            confidence=self.confidence[:, keep] if multilabel else self.confidence,
            outcome=self.outcome[:, keep] if multilabel else self.outcome,
        )


def _spec_key(specificity: float) -> str:
    """``sens_at_spec90`` for 0.9, ``sens_at_spec97.5`` for 0.975."""
    pct = round(specificity * 100, 6)
    return f"sens_at_spec{pct:g}"


def build_problem(
    probs: np.ndarray,
    targets: np.ndarray,
    task: Task | None = None,
    class_names: Sequence[str] = (),
    threshold: float = 0.5,
) -> Problem:
    """Check ``probs``/``targets`` and lay them out as columns (see :func:`clinical_report`)."""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(targets)
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if p.ndim not in (1, 2) or p.shape[0] != y.shape[0] or p.shape[0] == 0:
        raise DataError(
            f"clinical metrics: probabilities of shape {tuple(p.shape)} do not match targets of "
            f"shape {tuple(y.shape)}",
            hint="pass (n,) or (n, classes) probabilities and n targets",
        )
    finite = np.isfinite(p)
    if not finite.all() or p.min() < -1e-6 or p.max() > 1 + 1e-6:
        seen = f"[{p[finite].min():.4g}, {p[finite].max():.4g}]" if finite.any() else "none finite"
        raise DataError(
            f"clinical metrics take probabilities in [0, 1], got values in {seen}"
            + ("" if finite.all() else f" and {int((~finite).sum())} NaN/inf"),
            hint="apply softmax (multi-class) or sigmoid (binary, multi-label) to logits first; "
            "the `clinical` metric does it for a model's logits",
        )
    p = np.clip(p, 0.0, 1.0)
    if task is None:
        task = (
            "multilabel"
            if y.ndim == 2 and y.shape == p.shape and p.shape[1] > 1
            else "binary"
            if p.ndim == 1 or p.shape[1] == 2
            else "multiclass"
        )
    if task == "multilabel":
        return _multilabel(p, y, class_names, threshold)
    if p.ndim == 2 and p.shape[1] > 2:
        return _multiclass(p, y, class_names)
    return _binary(p if p.ndim == 1 else p[:, 1], y, class_names, threshold)


def _labels_in(y: np.ndarray, allowed: int, what: str) -> np.ndarray:
    y = y.reshape(-1) if y.ndim == 2 and y.shape[1] == 1 else y
    bad = ~np.isin(y, np.arange(allowed)) if y.ndim == 1 else np.ones(1, dtype=bool)
    if bad.any():
        found = y.reshape(-1)[bad.reshape(-1)][:5] if y.ndim == 1 else f"shape {y.shape}"
        raise DataError(
            f"clinical metrics: {what} targets must be class indices 0..{allowed - 1} (one per "
            f"case), found {found}",
            hint="check the target column and the declared classes",
        )
    return y.astype(np.int64)


def _binary(p: np.ndarray, y: np.ndarray, names: Sequence[str], threshold: float) -> Problem:
    y = _labels_in(y, 2, "binary")[:, None].astype(np.float64)
    name = names[-1] if names else "positive"
    return Problem(
        "binary", (str(name),), y, p[:, None], p[:, None] >= threshold, p[:, None], y, y[:, 0]
    )


def _multiclass(p: np.ndarray, y: np.ndarray, names: Sequence[str]) -> Problem:
    k = p.shape[1]
    y = _labels_in(y, k, f"{k}-class")
    onehot = np.eye(k)[y]
    top = p.argmax(axis=1)
    correct = (top == y).astype(np.float64)[:, None]
    return Problem(
        "multiclass", _names(names, k), onehot, p, np.eye(k, dtype=bool)[top],
        p.max(axis=1)[:, None], correct, y.astype(np.float64),
    )  # fmt: skip


def _multilabel(p: np.ndarray, y: np.ndarray, names: Sequence[str], threshold: float) -> Problem:
    if p.ndim != 2 or y.shape != p.shape or not np.isin(y, (0, 1)).all():
        raise DataError(
            f"clinical metrics: multi-label targets must be 0/1 with the probabilities' shape "
            f"{tuple(p.shape)}, got shape {tuple(y.shape)}"
            + ("" if y.shape != p.shape else f" with values {np.unique(y)[:6]}"),
            hint="one 0/1 column per label",
        )
    y = y.astype(np.float64)
    return Problem("multilabel", _names(names, p.shape[1]), y, p, p >= threshold, p, y, None)


def _names(names: Sequence[str], k: int) -> tuple[str, ...]:
    if names and len(names) != k:
        raise DataError(f"clinical metrics: {len(names)} class names for {k} classes")
    return tuple(str(n) for n in names) if names else tuple(str(i) for i in range(k))


def check_classes(
    problem: Problem, on_single_class: Literal["error", "skip"] = "error", split: str | None = None
) -> Problem:
    """Each column needs positive and negative cases; else a :class:`DataError` (or, with
    ``skip``, a warning naming what is left out of the table)."""
    pos = problem.labels.sum(axis=0)
    neg = problem.n - pos
    bad = np.flatnonzero((pos == 0) | (neg == 0))
    if bad.size == 0:
        return problem
    where = f"split {split!r}" if split else "the evaluated data"
    kind = "label" if problem.task == "multilabel" else "class"
    listed = "; ".join(
        f"{kind} {problem.names[i]!r}: {int(pos[i])} positive, {int(neg[i])} negative" for i in bad
    )
    msg = (
        f"clinical metrics are undefined with one class present in {where} ({problem.n} cases) — "
        f"{listed}; ROC-AUC, average precision, sensitivity and specificity need both"
    )
    if on_single_class == "skip" and bad.size < len(problem.names):
        warnings.warn(f"modalforge: {msg}; left out of the table", stacklevel=2)
        return problem.columns(np.setdiff1d(np.arange(len(problem.names)), bad))
    raise DataError(
        msg,
        hint="evaluate on a split that holds positive and negative cases of every class (more "
        "cases, or a stratified split), drop that class from the target, or set the metric's "
        "param on_single_class: skip to leave it out of the table with a warning",
    )


def statistics(
    problem: Problem,
    weights: np.ndarray,
    report: Sequence[Report] = REPORTS,
    specificities: Sequence[float] = (0.9,),
    n_bins: int = 10,
) -> dict[str, np.ndarray]:
    """Every selected statistic for each row of case weights ``(b, n)``: ``{key: (b,)}``."""
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    binary = problem.task == "binary"
    per: dict[str, list[np.ndarray]] = {}
    for j in range(len(problem.names)):
        labels = problem.labels[:, j]
        stats: dict[str, np.ndarray] = {}
        if {"auc", "ap", "sens_at_spec"} & set(report):
            curve = Curve.of(Ranking.of(problem.scores[:, j], labels), w)
            if "auc" in report:
                stats["auc"] = roc_auc(curve)
            if "ap" in report:
                stats["ap"] = average_precision(curve)
            if "sens_at_spec" in report:
                for s in specificities:
                    stats[_spec_key(s)] = sensitivity_at_specificity(curve, s)
        if {"sens_spec", "f1"} & set(report):
            conf = Confusion.of(labels, problem.predicted[:, j], w)
            if "sens_spec" in report:
                stats["sensitivity"], stats["specificity"] = conf.sensitivity(), conf.specificity()
            if "f1" in report:
                stats["f1"] = conf.f1()
        for k, v in stats.items():
            per.setdefault(k, []).append(v)
    out: dict[str, np.ndarray] = {}
    for stat, values in per.items():
        if binary:
            out[stat] = values[0]
            continue
        out[f"{stat}_macro"] = np.mean(values, axis=0)
        out.update({f"{stat}/{n}": v for n, v in zip(problem.names, values, strict=True)})
    if "ece" in report:
        eces = [
            expected_calibration_error(problem.confidence[:, j], problem.outcome[:, j], n_bins, w)
            for j in range(problem.confidence.shape[1])
        ]
        out["ece"] = np.mean(eces, axis=0)
        if problem.task == "multilabel":
            out.update({f"ece/{n}": v for n, v in zip(problem.names, eces, strict=True)})
    return out


def _usable(problem: Problem, w: np.ndarray) -> np.ndarray:
    """Resamples in which every column still has positive and negative cases."""
    pos = w @ problem.labels
    return ((pos > 0) & (pos < w.sum(axis=1, keepdims=True))).all(axis=1)


def clinical_report(
    probs: np.ndarray | torch.Tensor,
    targets: np.ndarray | torch.Tensor,
    *,
    task: Task | None = None,
    class_names: Sequence[str] = (),
    report: Sequence[Report] = REPORTS,
    threshold: float = 0.5,
    specificities: Sequence[float] = (0.9,),
    n_bins: int = 10,
    n_bootstrap: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    stratify: bool = True,
    on_single_class: Literal["error", "skip"] = "error",
    split: str | None = None,
) -> dict[str, float]:
    """The clinical table of saved predictions, as flat ``{key: float}`` (module docstring).

    ``probs``: ``(n,)`` or ``(n, 2)`` positive-class probabilities (binary), ``(n, k)`` softmax
    probabilities with class-index ``targets`` (multi-class), or ``(n, k)`` sigmoid
    probabilities with 0/1 ``targets`` of the same shape (multi-label); ``task`` is inferred
    from the shapes when not given. Sensitivity, specificity and F1 call a case positive when
    its probability is ``>= threshold`` (binary, multi-label) or its class is the argmax
    (multi-class). Intervals: ``n_bootstrap`` percentile-method resamples of the cases
    (stratified by class when ``stratify`` and the task is not multi-label; resamples where a
    class lost all its positives or negatives are left out and ``bootstrap_used`` says how many
    remained). ``split`` names the data in error messages.
    """
    if isinstance(probs, torch.Tensor):
        probs = probs.detach().cpu().double().numpy()
    if isinstance(targets, torch.Tensor):
        targets = targets.detach().cpu().numpy()
    problem = check_classes(
        build_problem(probs, targets, task, class_names, threshold), on_single_class, split
    )
    opts = {"report": tuple(report), "specificities": tuple(specificities), "n_bins": n_bins}
    point = statistics(problem, np.ones((1, problem.n)), **opts)
    if n_bootstrap <= 0:
        return {k: float(v[0]) for k, v in point.items()}
    reps: dict[str, list[np.ndarray]] = {k: [] for k in point}
    used = 0
    strata = problem.strata if stratify else None
    for idx in resample_indices(problem.n, n_bootstrap, seed, strata):
        w = case_counts(idx, problem.n)
        w = w[_usable(problem, w)]
        if w.shape[0]:
            for k, v in statistics(problem, w, **opts).items():
                reps[k].append(v)
            used += w.shape[0]
    if used == 0:
        raise DataError(
            f"clinical metrics: none of {n_bootstrap} bootstrap resamples of the {problem.n} "
            f"cases in {f'split {split!r}' if split else 'the evaluated data'} kept positive and "
            "negative cases of every class",
            hint="evaluate on more cases, or set stratify: true (binary and multi-class)",
        )
    out: dict[str, float] = {}
    for k, v in point.items():
        low, high = percentile_interval(np.concatenate(reps[k]), ci)
        out.update({k: float(v[0]), f"{k}_ci_low": low, f"{k}_ci_high": high})
    out["bootstrap_used"] = float(used)
    return out


class Clinical(Collecting):
    """The clinical table (ROC-AUC, AP, sensitivity/specificity, sensitivity at fixed
    specificity, F1, ECE) with bootstrap confidence intervals; see :func:`clinical_report`.

    Logits become probabilities by softmax over classes (multi-class; two logits are a binary
    task with class 1 positive), by sigmoid per output (multi-label, or a single binary logit).
    """

    name = "clinical"

    def __init__(
        self,
        target: Target | None = None,
        report: tuple[Report, ...] = REPORTS,
        threshold: Unit = 0.5,
        specificity: tuple[float, ...] = (0.9,),
        n_bins: Annotated[int, Field(ge=1)] = 10,
        n_bootstrap: Annotated[int, Field(ge=0)] = 1000,
        ci: Unit = 0.95,
        seed: int = 0,
        stratify: bool = True,
        on_single_class: Literal["error", "skip"] = "error",
        output_key: str = "logits",
    ) -> None:
        if target is not None and target.kind == TargetKind.REGRESSION:
            raise ValueError("clinical metrics need a multiclass or multilabel target")
        if not report:
            raise ValueError(f"report must name at least one of {', '.join(REPORTS)}")
        if not specificity or not all(0 < s < 1 for s in specificity):
            raise ValueError(f"specificity needs values between 0 and 1, got {list(specificity)}")
        self.report, self.threshold, self.specificity = tuple(report), threshold, specificity
        self.n_bins, self.n_bootstrap, self.ci, self.seed = n_bins, n_bootstrap, ci, seed
        self.stratify, self.on_single_class = stratify, on_single_class
        super().__init__(output_key, target)

    def compute(self) -> dict[str, float]:
        got = self.collected()
        if got is None:
            return {}
        logits, y = got
        logits = logits.double()
        if self.is_multilabel(logits, y):
            task: Task = "multilabel"
            probs = torch.sigmoid(logits)
        elif logits.ndim == 1 or logits.shape[1] == 1:
            task, probs = "binary", torch.sigmoid(logits.reshape(-1))
        else:
            task = "binary" if logits.shape[1] == 2 else "multiclass"
            probs = torch.softmax(logits, dim=1)
        names = self.target.class_names if self.target is not None else ()
        return clinical_report(
            probs,
            y.reshape(-1) if task != "multilabel" else y,
            task=task,
            class_names=names,
            report=self.report,
            threshold=self.threshold,
            specificities=self.specificity,
            n_bins=self.n_bins,
            n_bootstrap=self.n_bootstrap,
            ci=self.ci,
            seed=self.seed,
            stratify=self.stratify,
            on_single_class=self.on_single_class,
        )

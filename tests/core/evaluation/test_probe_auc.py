"""Multi-label probes: out-of-fold ROC-AUC per label, against scikit-learn's cross-validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from modalforge.contracts import Target, TargetKind
from modalforge.evaluation import cross_validated_probe_auc
from modalforge_metrics import LinearProbe, SvmProbe


def _data(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Label 0 is carried by feature 0, label 1 weakly by feature 1, label 2 by nothing."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    y = np.stack(
        [x[:, 0] > 0, x[:, 1] + rng.normal(scale=1.5, size=n) > 0, rng.random(n) < 0.4], axis=1
    ).astype(int)
    return x, y


def test_single_c_equals_sklearn_cross_val_predict():
    x, y = _data()
    result = cross_validated_probe_auc(x, y, folds=4, cs=(1.0,), seed=3)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)  # the probes L2-normalise features
    for col, auc in enumerate(result.per_label):
        folds = StratifiedKFold(n_splits=4, shuffle=True, random_state=3)
        scores = cross_val_predict(
            LogisticRegression(C=1.0, max_iter=1000),
            unit,
            y[:, col],
            cv=folds,
            method="decision_function",
        )
        assert auc == pytest.approx(roc_auc_score(y[:, col], scores), abs=1e-9)
    assert result.macro == pytest.approx(np.mean(result.per_label))
    assert result.chosen_c == (1.0,) * 12


def test_auc_follows_the_signal_in_each_label():
    x, y = _data(n=300)
    aucs = cross_validated_probe_auc(x, y, seed=0).per_label
    assert aucs[0] > 0.95 > aucs[1] > 0.6  # strong, weak signal
    assert abs(aucs[2] - 0.5) < 0.12  # no signal: chance


def test_rare_label_is_named():
    x, y = _data()
    y[:, 1] = 0
    y[0, 1] = 1
    with pytest.raises(ValueError, match="label 1 has 1 sample"):
        cross_validated_probe_auc(x, y)


@pytest.mark.parametrize("probe_cls", [LinearProbe, SvmProbe])
def test_metric_reports_auc_per_finding_for_a_multilabel_target(probe_cls):
    x, y = _data()
    target = Target(TargetKind.MULTILABEL, 3, class_names=("a", "b", "c"))
    probe = probe_cls(target, output_key="embed.ct", folds=3, cs=(1.0,))
    for rows in np.array_split(np.arange(len(x)), 4):
        probe.update(
            {"embed.ct": torch.tensor(x[rows], dtype=torch.float32)},
            {"target": torch.tensor(y[rows], dtype=torch.float32)},
        )
    results = probe.compute()
    name = probe_cls.name
    direct = cross_validated_probe_auc(
        x.astype(np.float32), y, kind=probe_cls.kind, folds=3, cs=(1.0,)
    )
    assert [results[f"{name}_auc/{c}"] for c in "abc"] == pytest.approx(direct.per_label)
    assert results[f"{name}_auc_macro"] == pytest.approx(direct.macro)
    assert all(math.isfinite(v) for v in results.values())

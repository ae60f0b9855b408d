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
from modalforge.evaluation import cross_validated_probe_auc, probe_auc
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


def test_train_test_probe_auc_equals_sklearn_fitted_on_the_train_split():
    x, y = _data(n=200, seed=1)
    xt, yt = _data(n=80, seed=2)
    result = probe_auc(x, y, torch.from_numpy(xt), torch.from_numpy(yt), cs=(0.5,))
    unit, unit_t = (a / np.linalg.norm(a, axis=1, keepdims=True) for a in (x, xt))
    for col, auc in enumerate(result.per_label):
        model = LogisticRegression(C=0.5, max_iter=1000).fit(unit, y[:, col])
        assert auc == pytest.approx(roc_auc_score(yt[:, col], model.decision_function(unit_t)))
    assert result.per_label[0] > 0.95 and abs(result.per_label[2] - 0.5) < 0.2
    assert result.macro == pytest.approx(np.mean(result.per_label))
    swept = probe_auc(x, y, xt, yt, cs=(0.01, 1.0, 100.0))
    assert set(swept.chosen_c) <= {0.01, 1.0, 100.0} and len(swept.chosen_c) == 3


def test_train_test_probe_auc_rejects_a_label_with_one_class_in_a_split():
    x, y = _data(n=100)
    yt = y[:40].copy()
    yt[:, 1] = 1
    with pytest.raises(ValueError, match="label 1 has only positives in the test split"):
        probe_auc(x, y, x[:40], yt)
    with pytest.raises(ValueError, match="labels 4 vs 2"):
        probe_auc(x, np.c_[y, y[:, :1]], x[:40], y[:40, :2])

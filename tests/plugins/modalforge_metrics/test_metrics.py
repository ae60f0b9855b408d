"""Metrics equal scikit-learn on random data, accumulated over several batches."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from modalforge.contracts import Target
from modalforge_metrics import MAE, RMSE, Accuracy, MacroF1, RocAuc


def _feed(
    metric, outputs: torch.Tensor, targets: torch.Tensor, key: str = "logits", parts: int = 3
):
    metric.reset()
    for o, t in zip(outputs.chunk(parts), targets.chunk(parts), strict=True):
        metric.update({key: o}, {"target": t})
    return metric.compute()


@pytest.fixture
def multiclass():
    g = torch.Generator().manual_seed(0)
    return torch.randn(60, 5, generator=g), torch.randint(0, 5, (60,), generator=g)


def test_accuracy_and_top_k_match_sklearn(multiclass):
    logits, y = multiclass
    got = _feed(Accuracy(Target("multiclass", 5), top_k=3), logits, y)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, logits.argmax(1)))
    expected_top3 = skm.top_k_accuracy_score(y, logits.numpy(), k=3, labels=np.arange(5))
    assert got["top3_accuracy"] == pytest.approx(expected_top3)


def test_accuracy_multilabel_is_exact_match():
    g = torch.Generator().manual_seed(1)
    logits, y = torch.randn(40, 3, generator=g), torch.randint(0, 2, (40, 3), generator=g).float()
    got = _feed(Accuracy(Target("multilabel", 3)), logits, y)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y.int(), (logits > 0).int()))


def test_macro_f1_matches_sklearn(multiclass):
    logits, y = multiclass
    got = _feed(MacroF1(Target("multiclass", 5)), logits, y)
    assert got == {"macro_f1": pytest.approx(skm.f1_score(y, logits.argmax(1), average="macro"))}


def test_roc_auc_multiclass_ovr_matches_sklearn(multiclass):
    logits, y = multiclass
    got = _feed(RocAuc(Target("multiclass", 5)), logits, y)
    prob = torch.softmax(logits.double(), 1).numpy()
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, prob, multi_class="ovr"))


def test_roc_auc_binary_matches_sklearn():
    g = torch.Generator().manual_seed(2)
    logits, y = torch.randn(50, 2, generator=g), torch.randint(0, 2, (50,), generator=g)
    got = _feed(RocAuc(Target("multiclass", 2)), logits, y)
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, torch.softmax(logits, 1)[:, 1]))


def test_roc_auc_is_nan_when_undefined():
    got = _feed(
        RocAuc(Target("multiclass", 2)), torch.randn(6, 2), torch.zeros(6, dtype=torch.long)
    )
    assert math.isnan(got["roc_auc"])


def test_regression_metrics_match_sklearn():
    g = torch.Generator().manual_seed(3)
    pred, y = torch.randn(30, 2, generator=g), torch.randn(30, 2, generator=g)
    target = Target("regression", 2)
    mae = _feed(MAE(target), pred, y, key="prediction")
    rmse = _feed(RMSE(target), pred, y, key="prediction")
    assert mae == {"mae": pytest.approx(skm.mean_absolute_error(y, pred))}
    assert rmse == {"rmse": pytest.approx(skm.root_mean_squared_error(y, pred), rel=1e-5)}


def test_reset_forgets_previous_batches(multiclass):
    logits, y = multiclass
    metric = Accuracy()
    _feed(metric, logits, y)
    metric.reset()
    metric.update({"logits": torch.tensor([[0.0, 1.0]])}, {"target": torch.tensor([1])})
    assert metric.compute() == {"accuracy": 1.0}

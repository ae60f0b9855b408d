"""Linear / SVM probes: perfect on separable features, chance on random labels, deterministic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modalforge.evaluation import cross_validated_probe, linear_probe, svm_probe


def _separable(n: int, classes: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class c sits around direction e_c (scaled randomly), with noise well inside the margin."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = torch.zeros(n, dim)
    x[torch.arange(n), y] = 1.0
    x = x * (0.5 + 3 * torch.rand(n, 1, generator=g))  # norm varies; L2-normalising removes it
    return x + 0.05 * torch.randn(n, dim, generator=g), y


@pytest.mark.parametrize("probe", [linear_probe, svm_probe])
def test_separable_features_are_classified_perfectly(probe):
    x, y = _separable(120, 4, 8, seed=0)
    xt, yt = _separable(80, 4, 8, seed=1)
    res = probe(x, y, xt, yt)
    assert res.accuracy == 1.0
    assert (res.num_train, res.num_test) == (120, 80)
    assert res.chosen_c[0] in (0.01, 0.1, 1.0, 10.0, 100.0)


@pytest.mark.parametrize("kind", ["logistic", "svm"])
def test_random_labels_give_chance_accuracy(kind):
    rng = np.random.default_rng(0)
    x, xt = rng.normal(size=(300, 16)), rng.normal(size=(400, 16))
    y, yt = rng.integers(0, 4, 300), rng.integers(0, 4, 400)
    probe = linear_probe if kind == "logistic" else svm_probe
    acc = probe(x, y, xt, yt).accuracy
    # labels independent of features: expected accuracy 1/4, standard error ~0.022 on 400 samples
    assert abs(acc - 0.25) < 0.1


def test_cross_validated_probe_and_determinism():
    x, y = _separable(60, 3, 6, seed=2)
    first = cross_validated_probe(x, y, folds=5)
    assert first.accuracy == 1.0 and len(first.chosen_c) == 5
    rng = np.random.default_rng(1)
    xr, yr = rng.normal(size=(200, 10)), rng.integers(0, 2, 200)
    a = cross_validated_probe(xr, yr, kind="svm", folds=4, seed=3)
    b = cross_validated_probe(xr, yr, kind="svm", folds=4, seed=3)
    assert a == b and abs(a.accuracy - 0.5) < 0.15


def test_sweep_picks_a_c_that_fits_the_data():
    # one class on each side of a hyperplane through the origin; C=1e-4 regularises the weights
    # to almost nothing (near-constant predictions), so the sweep must pick the larger C
    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 2)) + np.array([[0.0, 5.0]])  # normalised: the angle matters
    y = (x[:, 0] > 0).astype(int)
    res = linear_probe(x[:300], y[:300], x[300:], y[300:], cs=(1e-4, 100.0))
    assert res.chosen_c == (100.0,) and res.accuracy > 0.95


def test_probe_errors():
    with pytest.raises(ValueError, match="two classes"):
        linear_probe(np.ones((4, 2)), [0, 0, 0, 0], np.ones((2, 2)), [0, 0])
    with pytest.raises(ValueError, match="dim"):
        linear_probe(np.eye(4), [0, 1, 0, 1], np.ones((2, 3)), [0, 1])
    with pytest.raises(ValueError, match="labels"):
        svm_probe(np.eye(4), [0, 1, 0], np.eye(4), [0, 1, 0, 1])

"""Generation metrics: KID against a brute-force loop and closed forms, CLIP score, R-precision."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics.pairwise import polynomial_kernel as sk_polynomial_kernel

from modalforge.evaluation import (
    attribute_accuracy,
    clip_score,
    judge_accuracy,
    kid,
    polynomial_kernel,
    r_precision,
)


def _brute_mmd2(x: np.ndarray, y: np.ndarray, degree=3, gamma=None, coef=1.0) -> float:
    """Unbiased MMD² by explicit double loops over pairs (Bińkowski et al. 2018, eq. for KID)."""
    d = x.shape[1]
    g = 1.0 / d if gamma is None else gamma

    def k(a, b):
        return (g * float(np.dot(a, b)) + coef) ** degree

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_polynomial_kernel_matches_sklearn():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 5)), rng.normal(size=(4, 5))
    ours = polynomial_kernel(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    np.testing.assert_allclose(ours, sk_polynomial_kernel(x, y, degree=3, coef0=1), rtol=1e-12)


@pytest.mark.parametrize(("m", "n", "kw"), [(9, 9, {}), (7, 11, {"degree": 2, "gamma": 0.3})])
def test_kid_full_sets_equals_brute_force(m, n, kw):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(m, 6)), rng.normal(0.3, 1.2, size=(n, 6))
    mean, std = kid(torch.from_numpy(x).float(), y, subset_size=100, **kw)
    assert mean == pytest.approx(_brute_mmd2(x.astype(np.float32), y, **kw), rel=1e-6)
    assert std == 0.0  # one subset: all of both sets


@pytest.mark.parametrize("max_gram_entries", [0, 1 << 24])  # kernels per subset / Gram blocks
def test_kid_subsets_equal_brute_force_on_the_same_draws(max_gram_entries):
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(20, 4)), rng.normal(0.5, 1.0, size=(15, 4))
    gen = torch.Generator().manual_seed(7)
    mean, std = kid(
        x, y, subsets=5, subset_size=6, generator=gen, max_gram_entries=max_gram_entries
    )
    g = torch.Generator().manual_seed(7)
    scores = []
    for _ in range(5):  # same draw order as kid: a subset of x, then one of y
        ix = torch.randperm(20, generator=g)[:6].numpy()
        iy = torch.randperm(15, generator=g)[:6].numpy()
        scores.append(_brute_mmd2(x[ix], y[iy]))
    assert mean == pytest.approx(np.mean(scores), rel=1e-9)
    assert std == pytest.approx(np.std(scores), rel=1e-9)
    gen = torch.Generator().manual_seed(7)
    again = kid(x, y, subsets=5, subset_size=6, generator=gen, max_gram_entries=max_gram_entries)
    assert again == (mean, std)


def test_kid_linear_kernel_closed_form():
    """degree 1, gamma 1, coef 0: MMD² = (|Σx|² - Σ|x|²)/(m(m-1)) + same for y - 2 x̄·ȳ."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(30, 3)), rng.normal(1.0, 1.0, size=(20, 3))

    def within(a):
        return (np.sum(a.sum(0) ** 2) - np.sum(a**2)) / (len(a) * (len(a) - 1))

    closed = within(x) + within(y) - 2 * x.mean(0) @ y.mean(0)
    mean, _ = kid(x, y, degree=1, gamma=1.0, coef=0.0)
    assert mean == pytest.approx(closed, rel=1e-10)


def test_kid_same_distribution_near_zero_shifted_positive():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(600, 16, generator=g), torch.randn(600, 16, generator=g)
    shifted = torch.randn(600, 16, generator=g) + 0.5
    same_mean, same_std = kid(a, b, subsets=20, subset_size=300, generator=g)
    shift_mean, shift_std = kid(a, shifted, subsets=20, subset_size=300, generator=g)
    assert abs(same_mean) < 0.01 and same_std < 0.01
    assert shift_mean > 0.1 and shift_mean > 10 * shift_std


def test_kid_rejects_bad_input():
    with pytest.raises(ValueError, match="feature dims differ"):
        kid(torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="2-D"):
        kid(torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        kid(torch.full((4, 2), math.nan), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="at least 2 samples"):
        kid(torch.zeros(1, 2), torch.zeros(4, 2))


def test_clip_score_on_hand_built_embeddings():
    img = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [1.0, 0.0]])
    txt = torch.tensor([[3.0, 0.0], [0.0, -1.0], [1.0, 0.0], [0.0, 5.0]])
    # cosines 1, -1 (clipped to 0), 1/sqrt(2), 0
    expected = 100 * (1 + 0 + 1 / math.sqrt(2) + 0) / 4
    assert clip_score(img, txt) == pytest.approx(expected)
    assert clip_score(img, txt, w=2.5) == pytest.approx(expected * 2.5 / 100)
    with pytest.raises(ValueError, match="pairs"):
        clip_score(img, txt[:3])


def test_r_precision_on_hand_built_embeddings():
    prompts = torch.eye(3)  # three orthogonal prompts
    images = torch.tensor([[1.0, 0.1, 0.0], [0.2, 1.0, 0.0], [0.9, 0.0, 0.5], [1.0, 1.0, 1.0]])
    own = torch.tensor([0, 1, 2, 2])
    # image 0, 1 closest to their own prompt; image 2 ranks its prompt 2nd; image 3 ties all three
    assert r_precision(images, own, prompts) == pytest.approx(2 / 4)
    assert r_precision(images, own, prompts, k=2) == pytest.approx(3 / 4)
    assert r_precision(images, own, prompts, k=3) == pytest.approx(1.0)
    collapsed = torch.ones(5, 3)
    assert r_precision(collapsed, torch.arange(5) % 3, prompts) == 0.0
    with pytest.raises(ValueError, match="prompt_index"):
        r_precision(images, torch.tensor([0, 1, 2, 3]), prompts)


def test_judge_and_attribute_accuracy():
    assert judge_accuracy(torch.tensor([1, 2, 3, 4]), np.array([1, 2, 0, 4])) == 0.75
    pred = {"color": torch.tensor([0, 1, 2, 3]), "shape": torch.tensor([0, 0, 1, 1]), "x": [9] * 4}
    want = {"color": torch.tensor([0, 1, 2, 0]), "shape": torch.tensor([0, 1, 1, 1])}
    assert attribute_accuracy(pred, want) == {"color": 0.75, "shape": 0.75, "all": 0.5}
    with pytest.raises(ValueError, match="position"):
        attribute_accuracy(pred, {**want, "position": torch.zeros(4)})

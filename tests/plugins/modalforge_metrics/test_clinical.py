"""The clinical table against scikit-learn, its bootstrap against a loop of scikit-learn calls on
the same resamples, its interval against the Hanley–McNeil standard error, ECE in closed form."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.stats import norm
from sklearn import metrics as skm

from modalforge.contracts import Target
from modalforge.errors import DataError
from modalforge_metrics import Clinical, clinical_report
from modalforge_metrics.bootstrap import case_counts, percentile_interval, resample_indices
from modalforge_metrics.clinical import build_problem, statistics
from modalforge_metrics.clinical_stats import calibration_bins

THRESHOLD = 0.4
SPECS = (0.8, 0.9)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _binary(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.2 * y - 0.6)))
    return np.round(p, 2), y  # rounded: tied scores exercise the tie handling


def _multiclass(n: int = 150, k: int = 4, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    z = rng.normal(size=(n, k))
    z[np.arange(n), y] += 1.0
    return _softmax(np.round(z, 1)), y


def _multilabel(n: int = 140, k: int = 3, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random((n, k)) < [0.3, 0.5, 0.2]).astype(int)
    p = 1 / (1 + np.exp(-(rng.normal(size=(n, k)) + 1.5 * y - 0.8)))
    return np.round(p, 2), y


def _sens_at_spec(y: np.ndarray, p: np.ndarray, spec: float) -> float:
    fpr, tpr, _ = skm.roc_curve(y, p, drop_intermediate=False)
    return float(tpr[fpr <= 1 - spec + 1e-12].max())


def _sklearn_column(y: np.ndarray, p: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """What the clinical table gives for one one-vs-rest column, by scikit-learn."""
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    out = {
        "auc": skm.roc_auc_score(y, p),
        "ap": skm.average_precision_score(y, p),
        "sensitivity": tp / (tp + fn),
        "specificity": tn / (tn + fp),
        "f1": skm.f1_score(y, pred, zero_division=0),
    }
    out.update({f"sens_at_spec{round(s * 100)}": _sens_at_spec(y, p, s) for s in SPECS})
    return out


def _ece(conf: np.ndarray, outcome: np.ndarray, n_bins: int) -> float:
    """Expected calibration error written out as a loop over bins."""
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        inside = (conf >= lo) & ((conf < hi) if b < n_bins - 1 else (conf <= hi))
        if inside.any():
            total += inside.sum() / conf.size * abs(outcome[inside].mean() - conf[inside].mean())
    return total


def _sklearn_table(task: str, p: np.ndarray, y: np.ndarray, n_bins: int = 10) -> dict[str, float]:
    if task == "binary":
        out = _sklearn_column(y, p, (p >= THRESHOLD).astype(int))
        out["ece"] = _ece(p, y, n_bins)
        return out
    k = p.shape[1]
    if task == "multiclass":
        top = p.argmax(axis=1)
        cols = [
            _sklearn_column((y == c).astype(int), p[:, c], (top == c).astype(int)) for c in range(k)
        ]
        ece = {"ece": _ece(p.max(axis=1), (top == y).astype(float), n_bins)}
    else:
        pred = (p >= THRESHOLD).astype(int)
        cols = [_sklearn_column(y[:, c], p[:, c], pred[:, c]) for c in range(k)]
        eces = [_ece(p[:, c], y[:, c], n_bins) for c in range(k)]
        ece = {"ece": float(np.mean(eces)), **{f"ece/{c}": e for c, e in enumerate(eces)}}
    out = {}
    for stat in cols[0]:
        out[f"{stat}_macro"] = float(np.mean([col[stat] for col in cols]))
        out.update({f"{stat}/{c}": col[stat] for c, col in enumerate(cols)})
    return {**out, **ece}


CASES = {"binary": _binary, "multiclass": _multiclass, "multilabel": _multilabel}


@pytest.mark.parametrize("task", list(CASES))
def test_point_estimates_match_sklearn(task):
    p, y = CASES[task]()
    got = clinical_report(p, y, threshold=THRESHOLD, specificities=SPECS, n_bootstrap=0)
    want = _sklearn_table(task, p, y)
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key


def test_multiclass_macro_auc_and_f1_equal_sklearn_averages():
    p, y = _multiclass()
    got = clinical_report(p, y, report=["auc", "f1"], n_bootstrap=0)
    assert got["auc_macro"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr"))
    assert got["f1_macro"] == pytest.approx(skm.f1_score(y, p.argmax(1), average="macro"))


@pytest.mark.parametrize("task", list(CASES))
def test_vectorised_replicates_equal_sklearn_on_the_same_resamples(task):
    p, y = CASES[task]()
    strata = None if task == "multilabel" else y
    idx = next(resample_indices(len(y), 25, seed=3, strata=strata))
    problem = build_problem(p, y, threshold=THRESHOLD)
    got = statistics(problem, case_counts(idx, len(y)), specificities=SPECS)
    for r, rows in enumerate(idx):
        want = _sklearn_table(task, p[rows], y[rows])
        for key, value in want.items():
            assert got[key][r] == pytest.approx(value, abs=1e-9), (key, r)


def test_resamples_are_stratified_and_independent_of_chunking():
    _, y = _multiclass()
    whole = np.concatenate(list(resample_indices(len(y), 40, seed=5, strata=y)))
    chunked = np.concatenate(list(resample_indices(len(y), 40, seed=5, strata=y, chunk_elements=1)))
    assert whole.shape == (40, len(y)) and np.array_equal(whole, chunked)
    counts = np.stack([np.bincount(y[row], minlength=4) for row in whole])
    assert (counts == np.bincount(y, minlength=4)).all()  # every class keeps its size
    assert len({tuple(row) for row in whole}) == 40


def test_interval_is_the_percentile_of_sklearn_replicates():
    p, y = _binary(n=80)
    got = clinical_report(p, y, report=["auc", "ap"], n_bootstrap=200, seed=7, ci=0.9)
    rows = np.concatenate(list(resample_indices(len(y), 200, seed=7, strata=y)))
    aucs = [skm.roc_auc_score(y[r], p[r]) for r in rows]
    aps = [skm.average_precision_score(y[r], p[r]) for r in rows]
    assert (got["auc_ci_low"], got["auc_ci_high"]) == pytest.approx(np.quantile(aucs, [0.05, 0.95]))
    assert (got["ap_ci_low"], got["ap_ci_high"]) == pytest.approx(np.quantile(aps, [0.05, 0.95]))
    assert got["bootstrap_used"] == 200.0
    assert list(got)[:3] == ["auc", "auc_ci_low", "auc_ci_high"]


def test_interval_width_matches_hanley_mcneil_and_covers_the_true_auc():
    # binormal scores: AUC = Φ(d/√2) exactly; Hanley–McNeil's SE at that AUC and these counts
    n_pos = n_neg = 1500
    d = 1.19
    true_auc = norm.cdf(d / math.sqrt(2))
    rng = np.random.default_rng(11)
    scores = np.concatenate([rng.normal(d, 1, n_pos), rng.normal(0, 1, n_neg)])
    y = np.concatenate([np.ones(n_pos, int), np.zeros(n_neg, int)])
    q1, q2 = true_auc / (2 - true_auc), 2 * true_auc**2 / (1 + true_auc)
    var = (
        true_auc * (1 - true_auc)
        + (n_pos - 1) * (q1 - true_auc**2)
        + (n_neg - 1) * (q2 - true_auc**2)
    ) / (n_pos * n_neg)
    got = clinical_report(1 / (1 + np.exp(-scores)), y, report=["auc"], n_bootstrap=1000, seed=0)
    assert got["auc_ci_low"] < true_auc < got["auc_ci_high"]
    width = got["auc_ci_high"] - got["auc_ci_low"]
    assert width == pytest.approx(2 * 1.96 * math.sqrt(var), rel=0.12)


def test_ece_closed_form_binary_multiclass_multilabel():
    # bins of width 0.2: 4 cases at 0.1 with 1 positive (gap 0.15), 2 at 0.3 with none (0.3),
    # 4 at 0.9 with 3 positive (0.15): 0.4·0.15 + 0.2·0.3 + 0.4·0.15 = 0.18
    p = np.array([0.1] * 4 + [0.3] * 2 + [0.9] * 4)
    y = np.array([1, 0, 0, 0, 0, 0, 1, 1, 1, 0])
    assert clinical_report(p, y, report=["ece"], n_bins=5, n_bootstrap=0) == {
        "ece": pytest.approx(0.18)
    }
    # top label: 4 rows at 0.7 half right (gap 0.2), 2 at 0.5 right (0.5), 1 at 0.8 right (0.2)
    pm = np.array([[0.7, 0.2, 0.1]] * 4 + [[0.2, 0.5, 0.3]] * 2 + [[0.1, 0.1, 0.8]])
    ym = np.array([0, 0, 1, 2, 1, 1, 2])
    got = clinical_report(pm, ym, report=["ece"], n_bins=10, n_bootstrap=0)
    assert got == {"ece": pytest.approx(2 / 7)}
    # multi-label: the binary example as label "a", a perfectly calibrated label "b"
    pl = np.stack([p, np.full(10, 0.5)], axis=1)
    yl = np.stack([y, np.array([1, 0] * 5)], axis=1)
    got = clinical_report(pl, yl, class_names=["a", "b"], report=["ece"], n_bins=5, n_bootstrap=0)
    assert got == pytest.approx({"ece": 0.09, "ece/a": 0.18, "ece/b": 0.0})
    assert calibration_bins(np.array([0.0, 0.2, 0.999, 1.0]), 5).tolist() == [0, 1, 4, 4]


def test_one_class_split_is_a_clear_error():
    p = np.linspace(0.1, 0.9, 20)
    with pytest.raises(DataError) as err:
        clinical_report(p, np.zeros(20, int), class_names=["benign", "malignant"], split="test")
    msg = str(err.value)
    assert "split 'test'" in msg and "class 'malignant': 0 positive, 20 negative" in msg
    assert "on_single_class: skip" in msg and "stratified split" in msg


def test_one_label_missing_errors_or_is_skipped_with_a_warning():
    p, y = _multilabel()
    y[:, 1] = 1
    names = ["effusion", "nodule", "mass"]
    with pytest.raises(DataError, match="label 'nodule': 140 positive, 0 negative"):
        clinical_report(p, y, class_names=names, n_bootstrap=0)
    with pytest.warns(UserWarning, match="label 'nodule'.*left out of the table"):
        got = clinical_report(p, y, class_names=names, n_bootstrap=20, on_single_class="skip")
    assert "auc/nodule" not in got and "ece/nodule" not in got
    kept = [0, 2]
    assert got["auc_macro"] == pytest.approx(
        np.mean([skm.roc_auc_score(y[:, c], p[:, c]) for c in kept])
    )
    assert got["ece"] == pytest.approx(np.mean([got["ece/effusion"], got["ece/mass"]]))


def test_a_class_absent_from_a_multiclass_split_is_named():
    p, y = _multiclass()
    y[y == 2] = 0
    with pytest.raises(DataError, match=r"class 'c2': 0 positive, 150 negative"):
        clinical_report(p, y, class_names=["c0", "c1", "c2", "c3"])


def test_unstratified_bootstrap_leaves_out_one_class_resamples():
    y = np.array([1, 1] + [0] * 18)
    p = np.linspace(0.05, 0.95, 20)
    got = clinical_report(p, y, report=["auc"], n_bootstrap=300, stratify=False, seed=1)
    # P(a resample has no positive) = 0.9^20 ≈ 0.12: some are left out, and said so
    assert 200 < got["bootstrap_used"] < 300
    strat = clinical_report(p, y, report=["auc"], n_bootstrap=300, stratify=True, seed=1)
    assert strat["bootstrap_used"] == 300


def test_probabilities_are_checked():
    with pytest.raises(DataError, match="probabilities in"):
        clinical_report(np.array([-2.0, 3.0, 0.5]), np.array([0, 1, 1]))
    with pytest.raises(DataError, match=r"\[0.2, 0.5\] and 1 NaN/inf"):
        clinical_report(np.array([0.2, np.nan, 0.5]), np.array([0, 1, 1]))
    with pytest.raises(DataError, match="class indices 0..1"):
        clinical_report(np.array([0.2, 0.3, 0.5]), np.array([0, 1, 2]))


def _feed(metric: Clinical, logits: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    metric.reset()
    for o, t in zip(logits.chunk(3), y.chunk(3), strict=True):
        metric.update({"logits": o}, {"target": t})
    return metric.compute()


@pytest.mark.parametrize(
    ("kind", "k", "activation"),
    [("multiclass", 4, "softmax"), ("multiclass", 2, "softmax"), ("multilabel", 3, "sigmoid")],
)
def test_metric_turns_logits_into_probabilities(kind, k, activation):
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(90, k, generator=g)
    if kind == "multilabel":
        y = torch.randint(0, 2, (90, k), generator=g).float()
        probs, labels = torch.sigmoid(logits.double()), y
    else:
        y = torch.randint(0, k, (90,), generator=g)
        probs, labels = torch.softmax(logits.double(), 1), y
    names = tuple(f"f{i}" for i in range(k))
    metric = Clinical(Target(kind, k, names), n_bootstrap=30, seed=2, specificity=(0.85,))
    want = clinical_report(probs, labels, class_names=names, n_bootstrap=30, seed=2,
                           specificities=(0.85,))  # fmt: skip
    assert _feed(metric, logits, y) == pytest.approx(want)
    assert ("auc" in want) == (k == 2) and ("auc/f0" in want) == (k != 2)
    assert "sens_at_spec85" in want or "sens_at_spec85_macro" in want


def test_single_logit_is_a_sigmoid_binary_task():
    g = torch.Generator().manual_seed(5)
    logits, y = torch.randn(60, 1, generator=g), torch.randint(0, 2, (60,), generator=g)
    got = _feed(Clinical(Target("multiclass", 1), n_bootstrap=0), logits, y)
    assert got["auc"] == pytest.approx(skm.roc_auc_score(y, logits[:, 0]))
    assert got["sensitivity"] == pytest.approx(skm.recall_score(y, logits[:, 0] >= 0))


def test_bad_params_are_a_spec_error():
    from modalforge.errors import SpecError
    from modalforge.pipeline.build import instantiate
    from modalforge.plugin import load_plugins

    info = load_plugins(warn=False).registry.get("metric", "clinical")
    with pytest.raises(SpecError, match="specificity needs values between 0 and 1"):
        instantiate(info, {"specificity": (1.5,)}, "metrics.0", target=Target("multiclass", 3))
    with pytest.raises(SpecError, match="multiclass or multilabel"):
        instantiate(info, {}, "metrics.0", target=Target("regression", 1))


def test_auc_without_ties_matches_sklearn():
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 300)
    p = 1 / (1 + np.exp(-(rng.normal(size=300) + y)))
    got = clinical_report(p, y, report=["auc", "ap"], n_bootstrap=0)
    assert got == pytest.approx(
        {"auc": skm.roc_auc_score(y, p), "ap": skm.average_precision_score(y, p)}, abs=1e-12
    )


def test_percentile_interval_of_nothing_is_nan():
    assert all(math.isnan(v) for v in percentile_interval(np.array([]), 0.95))


def test_clinical_metric_in_a_real_spec_writes_its_keys(tmp_path):
    from modalforge.engine import train
    from modalforge.pipeline import build_pipeline
    from modalforge.plugin import load_plugins
    from modalforge.spec import parse_spec

    spec = {
        "name": "clinical-e2e",
        "data": {
            "dataset": {
                "name": "synthetic",
                "params": {
                    "num_samples": 96,
                    "num_classes": 3,
                    "image2d_size": None,
                    "tabular_features": 6,
                    "test_fraction": 0.5,
                    "seed": 1,
                },
            },  # fmt: skip
            "batch_size": 16,
        },
        "model": {
            "encoders": {"tabular": {"name": "mlp", "params": {"hidden_dims": [16], "out_dim": 8}}},
            "head": "classification",
        },
        "loss": "cross_entropy",
        "metrics": [
            {
                "name": "clinical",
                "params": {
                    "n_bootstrap": 100,
                    "specificity": [0.9],
                    "report": ["auc", "ap", "sens_spec", "sens_at_spec", "f1", "ece"],
                },
            }
        ],
        "train": {"epochs": 2, "lr": 0.01, "progress": False},
    }
    host = load_plugins(warn=False)
    pipeline = build_pipeline(parse_spec(spec), host.registry)
    train(pipeline, tmp_path / "run")
    written = json.loads((tmp_path / "run" / "results.json").read_text())["metrics"]
    names = pipeline.dataset.target.class_names
    assert names == ("class_0", "class_1", "class_2")
    for stat in ("auc", "ap", "sensitivity", "specificity", "sens_at_spec90", "f1"):
        for key in (f"{stat}_macro", *(f"{stat}/{n}" for n in names)):
            assert written[f"{key}_ci_low"] <= written[key] <= written[f"{key}_ci_high"], key
    assert written["bootstrap_used"] == 100 and 0 <= written["ece"] <= 1
    # the numbers are the table of the trained model's test-split predictions
    model = pipeline.model.eval()
    loader = torch.utils.data.DataLoader(pipeline.dataset.load("test"), batch_size=64)
    with torch.no_grad():
        logits, y = zip(*((model(b)["logits"], b["target"]) for b in loader), strict=True)
    want = clinical_report(torch.softmax(torch.cat(logits).double(), 1), torch.cat(y),
                           class_names=names, n_bootstrap=100)  # fmt: skip
    assert written == pytest.approx({"loss": written["loss"],
                                     "loss_cross_entropy": written["loss_cross_entropy"], **want},
                                    rel=1e-5)  # fmt: skip

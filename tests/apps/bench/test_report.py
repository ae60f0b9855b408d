"""Leaderboard rows for every grid cell, robustness curves and readable scatter labels."""

import pytest

from modalforge_apps.bench import ExpectedCell, leaderboard
from modalforge_apps.bench.report import robustness_plots, robustness_series
from modalforge_apps.report.plots import place_labels
from tests.apps.bench.test_bench import _rec


def test_cells_without_records_get_pending_and_partial_rows():
    expected = [ExpectedCell(c, f"label {c}", {"k": c}, 3) for c in ("a", "b", "c")]
    records = [_rec("a", 0, 0.5), _rec("a", 1, 0.7), _rec("a", 2, 0.9), _rec("b", 0, 0.6)]
    rows, _ = leaderboard(records, expected=expected)
    by_id = {r.cell_id: r for r in rows}
    assert [r.cell_id for r in rows] == ["a", "b", "c"]  # the pending cell ranks last
    assert (by_id["a"].status, by_id["a"].n_ok, by_id["a"].n_runs) == ("ok", 3, 3)
    assert (by_id["b"].status, by_id["b"].n_ok, by_id["b"].n_runs) == ("partial", 1, 3)
    c = by_id["c"]
    assert (c.status, c.n_ok, c.n_runs, c.label, c.metrics) == ("pending", 0, 3, "label c", {})
    assert c.overrides == {"k": "c"} and c.params_total is None


def _robust(cell, seed, clean, image, missing):  # noqa: ANN001, ANN202
    rec = _rec(cell, seed, clean)
    rec["robustness"] = {
        "metric": "accuracy",
        "clean": clean,
        "noise": {"image": {"0.0": clean, "1.0": image}, "tabular": {"0.0": clean, "1.0": clean}},
        "missing": {"image": missing, "tabular": 0.5},
        "auc": {},
    }
    return rec


def test_robustness_series_are_means_over_seeds_in_leaderboard_order(tmp_path):
    records = [
        _robust("a", 0, 0.6, 0.4, 0.5),
        _robust("a", 1, 0.8, 0.6, 0.7),
        _robust("b", 0, 0.9, 0.9, 0.9),
        _rec("c", 0, 0.95),  # no robustness record: not plotted
    ]
    rows, _ = leaderboard(records)
    metric, panels, missing, clean = robustness_series(records, rows)
    assert metric == "accuracy" and list(panels) == ["noise on image", "noise on tabular"]
    assert list(panels["noise on image"]) == ["b", "a"]
    xs, mean, std = panels["noise on image"]["a"]
    assert xs == [0.0, 1.0] and mean == pytest.approx([0.7, 0.5])
    assert std == pytest.approx([0.1414214, 0.1414214])
    assert missing["image missing"]["a"] == pytest.approx((0.6, 0.1414214))
    assert clean["b"] == (0.9, 0.0)
    figures = robustness_plots(records, rows, tmp_path)
    assert [p.name for p, _ in figures] == ["robustness_noise.png", "robustness_missing.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p, _ in figures)
    assert robustness_plots([_rec("c", 0, 0.9)], rows, tmp_path / "none") == []


def test_scatter_labels_do_not_overlap():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    # six labels on almost the same spot, as cells with equal parameter counts and accuracy
    points = [(f"fusion=name_{i}", 5000.0, 0.99 + i * 1e-4) for i in range(6)]
    ax.scatter([p[1] for p in points], [p[2] for p in points])
    notes = place_labels(fig, ax, points)
    fig.canvas.draw()
    boxes = [n.get_window_extent() for n in notes]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), "labels overlap"
    plt.close(fig)

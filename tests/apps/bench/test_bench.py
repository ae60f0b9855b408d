import json
import math

import pytest
import yaml

from modalforge.plugin import PluginHost, set_host
from modalforge.registry import Registrar
from modalforge_apps.bench import (
    RESULTS_FILE,
    GridError,
    expand_cells,
    leaderboard,
    load_grid,
    mean_std,
    read_results,
)
from modalforge_apps.cli import main
from tests.core.toy import ConcatFusion, toy_registry, toy_spec


class ExplodingFusion(ConcatFusion):
    """Builds fine, fails in the first forward pass: a cell that raises while training."""

    def forward(self, features, masks=None):  # noqa: ANN001, ANN201
        raise RuntimeError("boom in forward")


def _registry():  # noqa: ANN202
    registry = toy_registry()
    Registrar(registry, "test").fusion("exploding", ExplodingFusion)
    return registry


@pytest.fixture
def host():
    set_host(PluginHost(_registry(), []))
    yield
    set_host(None)


def _base() -> dict:
    spec = toy_spec()
    spec["train"]["tensorboard"] = False
    return spec


def _grid(tmp_path, axes=None, seeds=(0, 1), **extra):  # noqa: ANN001, ANN202
    data = {"base": _base(), "axes": axes or {"model.fusion": ["concat"]}, "seeds": list(seeds)}
    data.update(extra)
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _lines(out) -> list[dict]:  # noqa: ANN001
    return [json.loads(x) for x in (out / RESULTS_FILE).read_text().splitlines()]


# ------------------------------------------------------------------ grid format
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"axis": {"model.fusion": ["concat"]}}, "axis: Extra inputs are not permitted"),
        ({"seeds": []}, "seeds: List should have at least 1 item"),
        ({"seeds": [1, 1]}, "seeds: seeds must be distinct"),
        ({"axes": {"model.fusion": []}}, "axes: axis 'model.fusion' needs at least one value"),
        ({"axes": {"model..fusion": [1]}}, "must be a dotted spec path"),
        ({"base_spec": "x.yaml"}, "exactly one of `base`"),
    ],
)
def test_grid_errors_name_the_field(tmp_path, change, expected):
    data = {"base": _base(), "axes": {"model.fusion": ["concat"]}}
    data.update(change)
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(GridError) as err:
        load_grid(path)
    assert expected in str(err.value)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("seeds: [0]\nseeds: [1]\n", "line 2: duplicate key 'seeds' (first at line 1)"),
        ("axes: {x: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]}\n"
         + "".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}" if i else "*a"] * 20) + "]\n"
                   for i in range(5)),
         "expands to more than 100,000 values"),
    ],
    ids=["duplicate", "alias-bomb"],
)  # fmt: skip
def test_a_grid_file_is_read_by_the_spec_reader(tmp_path, capsys, text, expected):
    path = tmp_path / "g.yaml"
    path.write_text(text)
    assert main(["bench", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: ") and expected in err and "Traceback" not in err


def test_base_spec_path_and_default_seeds(tmp_path):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(_base()))
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump({"base_spec": "base.yaml", "axes": {"train.lr": [0.1]}}))
    loaded = load_grid(path)
    assert loaded.seeds == [0, 1, 2]
    assert loaded.base == _base()
    assert loaded.name == "g"


def test_cartesian_expansion_and_stable_ids():
    axes = {"model.fusion": ["concat", "sum", "gmu"], "train.lr": [1e-3, 3e-3]}
    cells = expand_cells(axes)
    assert len(cells) == 6
    assert [c.overrides for c in cells[:2]] == [
        {"model.fusion": "concat", "train.lr": 1e-3},
        {"model.fusion": "concat", "train.lr": 3e-3},
    ]
    assert cells[0].label == "fusion=concat, lr=0.001"
    assert len({c.cell_id for c in cells}) == 6
    # ids depend on the overrides only: same in another expansion and in a reordered grid
    again = {c.label: c.cell_id for c in expand_cells({"train.lr": [3e-3, 1e-3], **axes})}
    assert again["lr=0.001, fusion=concat"] == cells[0].cell_id
    assert cells[0].run_id(2) == f"{cells[0].cell_id}-s2"


def test_cell_spec_applies_overrides_seed_and_removal(tmp_path):
    path = _grid(
        tmp_path,
        axes={
            "model.encoders.ct": [None],
            "model.encoders.image": [{"name": "flatten", "params": {"dim": 3}}],
        },
    )
    loaded = load_grid(path)
    data = loaded.cell_dict(loaded.cells[0], 7)
    assert "ct" not in data["model"]["encoders"]
    assert data["model"]["encoders"]["image"] == {"name": "flatten", "params": {"dim": 3}}
    assert data["seed"] == 7 and data["train"]["progress"] is False
    assert loaded.cells[0].label == "ct=none, image=flatten"


# ------------------------------------------------------------------ running
def test_unknown_component_fails_before_anything_runs(host, tmp_path, capsys):
    path = _grid(tmp_path, axes={"model.fusion": ["concat", "concatt"]})
    out = tmp_path / "out"
    assert main(["bench", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "model.fusion" in err and "did you mean 'concat'" in err and "nothing was run" in err
    assert not (out / RESULTS_FILE).exists()
    assert not (out / "runs").exists()


def test_failing_and_incompatible_cells_are_recorded_and_others_go_on(host, tmp_path, capsys):
    path = _grid(tmp_path, axes={"model.fusion": ["exploding", "sum", "concat"]}, seeds=[0])
    out = tmp_path / "out"
    assert main(["bench", str(path), "--out", str(out)]) == 0
    by_fusion = {r["overrides"]["model.fusion"]: r for r in _lines(out)}
    assert by_fusion["exploding"]["status"] == "failed"
    assert by_fusion["exploding"]["error"]["type"] == "RuntimeError"
    assert "boom in forward" in by_fusion["exploding"]["error"]["message"]
    assert by_fusion["sum"]["status"] == "skipped"  # unequal dims: rejected at build time
    assert "sum needs equal input dims" in by_fusion["sum"]["error"]["message"]
    ok = by_fusion["concat"]
    assert ok["status"] == "ok" and 0 <= ok["metrics"]["accuracy"] <= 1
    # image 36*4+4, ct 64*6+6, state 5*8+8 and head 18*3+3
    assert ok["params_total"] == ok["params_trainable"] == 148 + 390 + 48 + 57
    assert ok["train_samples_per_s"] > 0 and ok["infer_samples_per_s"] > 0
    assert ok["peak_mem_kind"] == "process_peak_rss" and ok["peak_mem_mb"] > 0
    md = (out / "leaderboard.md").read_text()
    assert md.index("fusion=concat") < md.index("fusion=exploding")  # ranked rows first
    assert "failed: RuntimeError: boom in forward" in md
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "http" not in html.replace("http-equiv", "")


def test_resume_trains_nothing_when_all_ok(host, tmp_path):
    path = _grid(tmp_path, axes={"train.lr": [0.01, 0.1]})
    out = tmp_path / "out"
    assert main(["bench", str(path), "--out", str(out)]) == 0
    first = _lines(out)
    assert len(first) == 4 and all(r["status"] == "ok" for r in first)
    assert main(["bench", str(path), "--out", str(out)]) == 0
    assert _lines(out) == first  # no new lines, same timestamps


def test_corrupt_line_is_counted_and_its_run_redone(host, tmp_path, capsys):
    path = _grid(tmp_path, seeds=[0, 1])
    out = tmp_path / "out"
    assert main(["bench", str(path), "--out", str(out)]) == 0
    lines = (out / RESULTS_FILE).read_text().splitlines()
    lost = json.loads(lines[1])["run_id"]
    (out / RESULTS_FILE).write_text(lines[0] + "\n" + lines[1][:40] + "\n")
    capsys.readouterr()
    assert main(["bench", str(path), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "1 unreadable line(s)" in captured.out
    assert "ran 1 (ok 1" in captured.out and "1 corrupt line(s) ignored" in captured.out
    records, corrupt = read_results(out / RESULTS_FILE)
    assert corrupt == 1
    assert [r["run_id"] for r in records] == [json.loads(lines[0])["run_id"], lost]


def test_different_grid_is_refused(host, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["bench", str(_grid(tmp_path, seeds=[0])), "--out", str(out)]) == 0
    before = (out / RESULTS_FILE).read_text()
    assert main(["bench", str(_grid(tmp_path, seeds=[0, 1])), "--out", str(out)]) == 2
    assert "holds results of a different grid" in capsys.readouterr().err
    assert (out / RESULTS_FILE).read_text() == before


# ------------------------------------------------------------------ leaderboard
def _rec(cell, seed, acc, status="ok", params=10):  # noqa: ANN001, ANN202
    rec = {"cell_id": cell, "run_id": f"{cell}-s{seed}", "label": cell, "seed": seed}
    rec["status"] = status
    if status == "ok":
        rec |= {"metrics": {"loss": 1.0, "accuracy": acc}, "params_total": params}
        rec |= {"train_seconds": 2.0 * (seed + 1)}
    return rec


def test_mean_std_closed_form():
    assert mean_std([0.5, 0.7, 0.9]) == pytest.approx((0.7, 0.2))
    assert mean_std([0.3]) == (0.3, 0.0)


def test_leaderboard_aggregates_and_ranks():
    records = [
        _rec("a", 0, 0.5),
        _rec("a", 1, 0.7),
        _rec("a", 2, 0.9),
        _rec("b", 0, 0.1, status="failed"),
        _rec("b", 0, 0.8),  # a rerun supersedes the failure
        _rec("b", 1, 0.9),
        _rec("c", 0, 0.0, status="skipped"),
    ]
    rows, names = leaderboard(records)
    assert names == ["accuracy", "loss"]
    assert [r.cell_id for r in rows] == ["b", "a", "c"]
    b, a, c = rows
    assert b.metrics["accuracy"] == pytest.approx((0.85, math.sqrt(0.005)))
    assert a.metrics["accuracy"] == pytest.approx((0.7, 0.2))
    assert a.train_seconds == pytest.approx(4.0) and a.n_ok == 3 and b.status == "ok"
    assert c.status == "skipped" and c.metrics == {}
    from modalforge_apps.bench.results import to_csv, to_markdown

    csv_lines = to_csv(rows, names).splitlines()
    assert csv_lines[0].startswith("rank,cell_id,label,status,seeds_ok,seeds,accuracy_mean,")
    assert csv_lines[2].startswith("2,a,a,ok,3,3,0.7")
    assert "| 0.7000 ± 0.2000 |" in to_markdown(rows, names)


@pytest.mark.slow
def test_parallel_workers_record_every_run(host, tmp_path):
    from modalforge_apps.bench import run_bench

    loaded = load_grid(_grid(tmp_path, axes={"model.fusion": ["concat", "exploding"]}, seeds=[0]))
    out = tmp_path / "out"
    summary = run_bench(loaded, out, workers=2, registry_factory=_registry, log=lambda _: None)
    assert (summary.ok, summary.failed) == (1, 1)
    status = {r["overrides"]["model.fusion"]: r["status"] for r in _lines(out)}
    assert status == {"concat": "ok", "exploding": "failed"}


def test_dry_run_lists_cells_and_needs_no_out(host, tmp_path, capsys):
    path = _grid(tmp_path, axes={"train.lr": [0.01, 0.1]}, extra_cells=[{"model.fusion": "sum"}])
    assert main(["bench", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "3 cells × 2 seeds = 6 runs; all valid" in out and "fusion=sum" in out
    assert main(["bench", str(path)]) == 2
    assert "bench needs --out DIR" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["interaction", "digits_halves"])
def test_example_grids_are_valid(name):
    from pathlib import Path

    from modalforge.plugin import get_registry
    from modalforge_apps.bench import check_cells

    path = Path(__file__).parents[3] / "examples" / "bench" / f"{name}.yaml"
    loaded = load_grid(path)
    assert len(check_cells(loaded, get_registry())) == len(loaded.cells) >= 9
    assert loaded.seeds == [0, 1, 2]
    assert sum(len(c.overrides.get("model.encoders", {})) == 1 for c in loaded.cells) == 2


def test_robustness_is_recorded_per_modality(host, tmp_path):
    path = _grid(tmp_path, seeds=[0])
    out = tmp_path / "out"
    assert main(["bench", str(path), "--out", str(out)]) == 0
    (rec,) = _lines(out)
    rob = rec["robustness"]
    mods = ["image", "ct", "state"]
    assert sorted(rob["auc"]) == sorted(mods) and sorted(rob["missing"]) == sorted(mods)
    for mod in mods:
        curve = rob["noise"][mod]
        assert list(curve) == ["0.0", "0.25", "0.5", "0.75", "1.0"]
        assert curve["0.0"] == pytest.approx(rob["clean"])  # no noise: the clean accuracy
        assert rec["metrics"]["noise_auc_" + mod] == rob["auc"][mod]
        levels, values = [float(k) for k in curve], list(curve.values())
        trapezoid = sum(
            (levels[i + 1] - levels[i]) * (values[i] + values[i + 1]) / 2
            for i in range(len(levels) - 1)
        )
        assert rob["auc"][mod] == pytest.approx(trapezoid / (levels[-1] - levels[0]))
        assert 0.0 <= rec["metrics"][f"missing_{mod}_accuracy"] <= 1.0
    assert rob["clean"] == pytest.approx(rec["metrics"]["accuracy"])
    assert "noise_auc_image" in (out / "leaderboard.md").read_text()


# ------------------------------------------------------------------ k-fold cross-validation
def test_folds_axis_runs_every_fold_and_aggregates_over_seeds_and_folds(tmp_path, host, capsys):
    base = _base()
    base["data"].update(
        split={"source": "train", "fractions": {"fit": 0.75, "held": 0.25}, "fold_split": "held"},
        train_split="fit",
        eval_split="held",
    )
    path = tmp_path / "grid.yaml"
    grid = {"base": base, "axes": {"model.fusion": ["concat"]}, "seeds": [0, 1], "folds": 3}
    path.write_text(yaml.safe_dump(grid, sort_keys=False))
    out = tmp_path / "out"
    assert main(["bench", str(path), "--out", str(out)]) == 0
    assert "1 cells × 2 seeds × 3 folds" in capsys.readouterr().out
    records = _lines(out)
    assert sorted((r["seed"], r["fold"]) for r in records) == [
        (s, f) for s in (0, 1) for f in range(3)
    ]
    assert all(r["run_id"].endswith(f"-s{r['seed']}-f{r['fold']}") for r in records)
    for r in records:  # each run held out its own fold
        spec = yaml.safe_load((out / "runs" / r["run_id"] / "spec.yaml").read_text())
        assert spec["data"]["split"]["folds"] == 3 and spec["data"]["split"]["fold"] == r["fold"]
    rows, _ = leaderboard(records)
    assert rows[0].n_ok == 6
    want = mean_std([r["metrics"]["accuracy"] for r in records])
    assert rows[0].metrics["accuracy"] == pytest.approx(want)
    assert "mean ± sample std over seeds × folds" in (out / "report.html").read_text()
    with pytest.raises(GridError, match="use the top-level `folds: K`"):
        load_grid(_grid(tmp_path, axes={"data.split.fold": [0, 1]}))


def test_fold_parts_are_disjoint_and_cover_the_source(host):
    from modalforge.pipeline import build_pipeline
    from modalforge.plugin import get_registry
    from modalforge.spec import parse_spec

    held = []
    for fold in range(4):
        spec = _base()
        spec["data"].update(
            split={
                "source": "train",
                "fractions": {"fit": 0.9, "held": 0.1},
                "fold_split": "held",
                "folds": 4,
                "fold": fold,
            },
            train_split="fit",
            eval_split="held",
        )
        reader = build_pipeline(parse_spec(spec), get_registry()).dataset
        assert not set(reader.indices["fit"]) & set(reader.indices["held"])
        held += reader.indices["held"].tolist()
    assert sorted(held) == list(range(len(reader.reader.load("train"))))

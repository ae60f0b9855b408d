"""``modalforge bench`` with closed-loop success: each run's policy is rolled out in the grid's
environment, and the record's ``rollout_*`` metrics are those ``modalforge rollout`` measures
for the same run and episodes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from modalforge.plugin import set_host
from modalforge_apps.bench import RESULTS_FILE, load_grid
from modalforge_apps.cli import main

RECIPE = Path(__file__).parents[3] / "apps/modalforge_apps/recipes/robotics_tabletop_reach.yaml"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MODALFORGE_CACHE", str(tmp_path / "cache"))
    set_host(None)
    yield
    set_host(None)


def _base() -> dict:
    base = yaml.safe_load(RECIPE.read_text())
    base["data"]["dataset"]["params"].update(episodes=6, val_episodes=2)
    base["data"]["batch_size"] = 16
    base["train"].update(epochs=1, tensorboard=False)
    return base


def test_grid_ranks_by_closed_loop_success_as_rollout_measures_it(tmp_path, cache, capsys):
    grid = {
        "base": _base(),
        "axes": {
            "model.head": [
                {"name": "mse_action", "params": {"hidden_dims": [32]}},
                {"name": "binned_action", "params": {"bins": 16}},
            ]
        },
        "extra_cells": [],
        "seeds": [0],
        "rank_by": "rollout_success",
        "rollout": {"env": "tabletop_reach", "episodes": 3, "seed": 500},
    }
    # the loss must follow the head: the binned head's cross-entropy
    grid["axes"]["loss"] = ["action_mse", "action_bins_ce"]
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid, sort_keys=False))
    out = tmp_path / "bench"
    assert main(["bench", str(path), "--out", str(out)]) == 0
    records = [json.loads(x) for x in (out / RESULTS_FILE).read_text().splitlines()]
    ok = [r for r in records if r["status"] == "ok"]
    skipped = [r for r in records if r["status"] != "ok"]
    assert len(ok) == 2 and len(skipped) == 2  # the mismatched head/loss pairs do not build
    for rec in ok:
        m = rec["metrics"]
        assert 0.0 <= m["rollout_success_low"] <= m["rollout_success"] <= m["rollout_success_high"]
        assert m["rollout_length"] <= 60  # the reach task's time limit
    assert "rollout_success" in (out / "leaderboard.md").read_text()

    rec = ok[0]
    run = out / "runs" / rec["run_id"]
    capsys.readouterr()
    argv = ["rollout", str(run / "spec.yaml"), "--checkpoint", str(run), "--env", "tabletop_reach"]
    argv += ["--episodes", "3", "--seed", "500", "--out", str(tmp_path / "r"), "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["success_rate"] == rec["metrics"]["rollout_success"]
    assert summary["mean_return"] == pytest.approx(rec["metrics"]["rollout_return"])
    assert summary["mean_length"] == pytest.approx(rec["metrics"]["rollout_length"])


def test_rollout_section_is_validated(tmp_path):
    base = {"base": {"name": "x"}, "seeds": [0]}
    for bad, field in (({"episodes": 3}, "env"), ({"env": "x", "episodes": 0}, "episodes")):
        path = tmp_path / "g.yaml"
        path.write_text(yaml.safe_dump({**base, "rollout": bad}))
        with pytest.raises(Exception, match=field):
            load_grid(path)

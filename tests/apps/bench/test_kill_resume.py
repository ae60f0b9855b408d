"""A ``modalforge bench`` process killed mid-grid loses at most the run in flight; rerunning the
same command finishes the grid without redoing finished runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import yaml

GRID = {
    "name": "kill-resume",
    "base": {
        "name": "kill-resume",
        "data": {
            "dataset": {"name": "interaction", "params": {"num_samples": 160}},
            "batch_size": 32,
        },
        "model": {
            "encoders": {
                "image": {"name": "cnn", "params": {"widths": [4], "out_dim": 8}},
                "tabular": {"name": "mlp", "params": {"hidden_dims": [8], "out_dim": 8}},
            },
            "fusion": "concat",
            "head": "classification",
        },
        "loss": "cross_entropy",
        "metrics": ["accuracy"],
        "train": {"epochs": 6, "tensorboard": False},
    },
    "axes": {"model.fusion": ["concat", "mean", "max", "sum"]},
    "seeds": [0],
}


def _bench(grid, out) -> subprocess.Popen:  # noqa: ANN001
    cmd = [sys.executable, "-m", "modalforge", "bench", str(grid), "--out", str(out)]
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )


def _records(out) -> list[dict]:  # noqa: ANN001
    path = out / "results.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_killed_bench_resumes_without_redoing_finished_runs(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(yaml.safe_dump(GRID))
    out = tmp_path / "out"
    proc = _bench(grid, out)
    deadline = time.monotonic() + 300
    while not _records(out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
    os.killpg(proc.pid, signal.SIGKILL)  # no clean-up of any kind
    proc.wait()
    first = _records(out)  # every line parses: appends are whole lines
    assert 1 <= len(first) < 4 and all(r["status"] == "ok" for r in first)

    proc = _bench(grid, out)
    output = proc.communicate(timeout=600)[0].decode()
    assert proc.returncode == 0, output[-2000:]
    assert f"{len(first)} run(s) already finished" in output
    final = _records(out)
    assert final[: len(first)] == first  # finished runs were kept, not redone
    assert sorted(r["run_id"] for r in final) == sorted({r["run_id"] for r in final})
    assert len(final) == 4 and all(r["status"] == "ok" for r in final)
    assert (out / "leaderboard.md").exists() and (out / "report.html").exists()

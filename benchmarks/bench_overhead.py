"""Harness overhead: one grid cell through ``modalforge bench`` vs the same run through
``modalforge train``, measured two ways, alternating bench/train so load drifts hit both alike.

1. **Per run, in one process** (plugins loaded once, as in a grid): the harness's ``run_one``
   (build, train, inference-rate pass, robustness evaluation, record) against what
   ``modalforge train`` does with the same spec (build, train).
2. **End to end, as fresh CLI processes**: a one-cell grid through ``modalforge bench`` (which also
   validates the grid and writes the leaderboard and the HTML report with its plots, once per
   invocation) against ``modalforge train``.

Run: ``.venv/bin/python benchmarks/bench_overhead.py [--grid examples/bench/interaction.yaml]
[--cell 0] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from modalforge_apps.bench import cell_spec_dict, load_grid

CLI = [sys.executable, "-m", "modalforge"]


def _run(cmd: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", default="examples/bench/interaction.yaml")
    ap.add_argument("--cell", type=int, default=0, help="index of the cell in the grid")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    loaded = load_grid(args.grid)
    cell = loaded.cells[args.cell]
    work = Path(tempfile.mkdtemp(prefix="bench_overhead_"))
    grid = {
        "name": "overhead",
        "base": loaded.base,
        "axes": {k: [v] for k, v in cell.overrides.items()},
        "seeds": [args.seed],
    }
    (work / "grid.yaml").write_text(yaml.safe_dump(grid))
    spec = cell_spec_dict(loaded.base, cell.overrides, args.seed)
    spec["output_dir"] = str(work / "train_out")
    (work / "spec.yaml").write_text(yaml.safe_dump(spec))

    from modalforge.engine import seed_everything, train
    from modalforge.pipeline import build_pipeline
    from modalforge.plugin import get_registry
    from modalforge.spec import parse_spec
    from modalforge_apps.bench import run_one

    registry = get_registry()
    run_s, plain_s = [], []
    for i in range(args.repeats + 1):  # the first pair warms up caches and is dropped
        start = time.perf_counter()
        rec = run_one({"run_id": "x"}, spec, str(work / f"run_{i}"), registry=registry)
        bench_run = time.perf_counter() - start
        assert rec["status"] == "ok", rec.get("error")
        start = time.perf_counter()
        parsed = parse_spec(spec)
        seed_everything(parsed.seed)
        train(build_pipeline(parsed, registry), work / f"train_{i}")
        train_run = time.perf_counter() - start
        if i:
            run_s.append(bench_run)
            plain_s.append(train_run)
            print(f"per run {i}: bench run_one {bench_run:.2f} s, train {train_run:.2f} s")
    rb, rt = statistics.median(run_s), statistics.median(plain_s)
    print(f"per run, in process: bench {rb:.2f} s vs train {rt:.2f} s, ratio {rb / rt:.3f}\n")

    bench_s, train_s, in_bench_train = [], [], []
    for i in range(args.repeats):
        out = work / f"bench_{i}"
        bench_s.append(_run([*CLI, "bench", str(work / "grid.yaml"), "--out", str(out)]))
        rec = json.loads((out / "results.jsonl").read_text().splitlines()[0])
        in_bench_train.append(rec["train_seconds"])
        shutil.rmtree(work / "train_out", ignore_errors=True)
        train_s.append(_run([*CLI, "train", str(work / "spec.yaml")]))
        print(
            f"repeat {i}: bench {bench_s[-1]:.2f} s (its training {rec['train_seconds']:.2f} s), "
            f"train {train_s[-1]:.2f} s",
            flush=True,
        )
    b, t = statistics.median(bench_s), statistics.median(train_s)
    print(f"\ncell {cell.label!r} of {args.grid}, seed {args.seed}, {args.repeats} repeats")
    print(f"per run, in one process: ratio {rb / rt:.3f} (bench {rb:.2f} s, train {rt:.2f} s)")
    print(f"modalforge bench  median {b:.2f} s  (min {min(bench_s):.2f})")
    print(f"modalforge train  median {t:.2f} s  (min {min(train_s):.2f})")
    print(f"ratio bench/train: median {b / t:.3f}, min/min {min(bench_s) / min(train_s):.3f}")
    print(f"training inside bench: median {statistics.median(in_bench_train):.2f} s")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

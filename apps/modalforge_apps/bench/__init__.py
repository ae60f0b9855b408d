"""``modalforge bench``: run a grid of pipeline variants × seeds, then rank and report them."""

from __future__ import annotations

from pathlib import Path

from modalforge_apps.bench.grid import (
    Cell,
    Grid,
    GridError,
    LoadedGrid,
    cell_spec_dict,
    check_cells,
    expand_cells,
    load_grid,
)
from modalforge_apps.bench.results import (
    RESULTS_FILE,
    ExpectedCell,
    Row,
    leaderboard,
    mean_std,
    read_results,
    write_leaderboard,
)
from modalforge_apps.bench.runner import BenchSummary, pin_grid, run_bench, run_one


def write_outputs(loaded: LoadedGrid, out: str | Path) -> tuple[list[Row], list[str]]:
    """``leaderboard.csv``, ``leaderboard.md`` and ``report.html`` from ``results.jsonl``."""
    from modalforge_apps.bench.report import robustness_plots, write_bench_report

    out = Path(out)
    records, corrupt = read_results(out / RESULTS_FILE)
    run_ids = loaded.run_ids()
    records = [r for r in records if r["run_id"] in run_ids]
    n = len(loaded.replicates)
    expected = [ExpectedCell(c.cell_id, c.label, c.overrides, n) for c in loaded.cells]
    rows, names = leaderboard(records, loaded.grid.rank_by, expected)
    write_leaderboard(out, rows, names)
    notes = [
        "peak memory: CUDA max allocated per run, or on CPU the process's peak RSS "
        "(a high-water mark since the process started, so an upper bound per run)",
        "inference samples/s: one evaluation pass (forward + metrics) over the eval split",
    ]
    if corrupt:
        notes.append(f"{corrupt} unreadable line(s) in results.jsonl were ignored")
    write_bench_report(
        out / "report.html",
        name=loaded.name,
        rows=rows,
        names=names,
        notes=notes,
        over="seeds × folds" if loaded.grid.folds else "seeds",
        extra_figures=robustness_plots(records, rows, out / "plots"),
    )
    return rows, names


__all__ = [
    "RESULTS_FILE",
    "BenchSummary",
    "Cell",
    "ExpectedCell",
    "Grid",
    "GridError",
    "LoadedGrid",
    "Row",
    "cell_spec_dict",
    "check_cells",
    "expand_cells",
    "leaderboard",
    "load_grid",
    "mean_std",
    "pin_grid",
    "read_results",
    "run_bench",
    "run_one",
    "write_leaderboard",
    "write_outputs",
]

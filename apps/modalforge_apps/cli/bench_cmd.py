"""``modalforge bench GRID --out DIR``: run a grid of cells × seeds, then rank and report."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_bench(args: argparse.Namespace) -> int:
    from modalforge_apps.bench import load_grid, run_bench, write_outputs

    loaded = load_grid(args.grid)
    n_runs = len(loaded.cells) * len(loaded.seeds)
    if args.dry_run:
        from modalforge.plugin import get_registry
        from modalforge_apps.bench import check_cells

        check_cells(loaded, get_registry())
        for cell in loaded.cells:
            print(f"{cell.cell_id}  {cell.label}")
        print(f"\n{len(loaded.cells)} cells × {len(loaded.seeds)} seeds = {n_runs} runs; all valid")
        return 0
    if not args.out:
        from modalforge_apps.bench import GridError

        raise GridError("bench needs --out DIR (the folder results go to; rerun it to resume)")
    out = Path(args.out)
    print(f"grid {loaded.name}: {len(loaded.cells)} cells × {len(loaded.seeds)} seeds")
    summary = run_bench(loaded, out, workers=args.workers)
    rows, names = write_outputs(loaded, out)
    print(
        f"\nran {summary.ran} (ok {summary.ok}, failed {summary.failed}, skipped "
        f"{summary.skipped}); {summary.resumed} already done"
        + (f"; {summary.corrupt_lines} corrupt line(s) ignored" if summary.corrupt_lines else "")
    )
    print(f"wrote {out / 'leaderboard.md'}, {out / 'leaderboard.csv'} and {out / 'report.html'}")
    return 0

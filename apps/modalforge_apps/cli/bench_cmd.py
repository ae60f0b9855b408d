"""``modalforge bench GRID --out DIR``: run a grid of cells × seeds, then rank and report."""

from __future__ import annotations

import argparse
from typing import Any

RAY_OPTIONS = ("ray_address", "ray_cpus_per_cell", "ray_gpus_per_cell")


def make_executor(args: argparse.Namespace) -> Any:
    """The executor the options ask for; Ray is imported only for ``--executor ray``."""
    from modalforge_apps.bench.executors import ExecutorError, RayExecutor, local_executor

    executor = getattr(args, "executor", "local") or "local"
    given = [f"--{o.replace('_', '-')}" for o in RAY_OPTIONS if getattr(args, o, None) is not None]
    if executor == "ray":
        if getattr(args, "workers", None) is not None:
            raise ExecutorError(
                "--workers is for the local executor; with --executor ray, Ray places the runs",
                hint="drop --workers (size runs with --ray-cpus-per-cell / --ray-gpus-per-cell)",
            )
        cpus = args.ray_cpus_per_cell
        return RayExecutor(
            args.ray_address,
            num_cpus=1.0 if cpus is None else cpus,
            num_gpus=args.ray_gpus_per_cell,
        )
    if given:
        raise ExecutorError(
            f"{', '.join(given)} only apply to the Ray executor",
            hint="add --executor ray, or drop them",
        )
    return local_executor(getattr(args, "workers", None) or 1)


def cmd_bench(args: argparse.Namespace) -> int:
    from modalforge_apps.bench import load_grid, run_bench, write_outputs

    loaded = load_grid(args.grid)
    n_runs = len(loaded.cells) * len(loaded.replicates)
    runs = f"{len(loaded.seeds)} seeds" + (
        f" × {loaded.grid.folds} folds" if loaded.grid.folds else ""
    )
    if args.dry_run:
        from modalforge.plugin import get_registry
        from modalforge_apps.bench import check_cells

        check_cells(loaded, get_registry())
        for cell in loaded.cells:
            print(f"{cell.cell_id}  {cell.label}")
        print(f"\n{len(loaded.cells)} cells × {runs} = {n_runs} runs; all valid")
        return 0
    if not args.out:
        from modalforge_apps.bench import GridError

        raise GridError("bench needs --out DIR (the folder results go to; rerun it to resume)")
    from modalforge import io

    out = io.check_output_dir(args.out, "--out")
    executor = make_executor(args)  # a missing Ray fails here, before anything runs
    print(f"grid {loaded.name}: {len(loaded.cells)} cells × {runs}")
    summary = run_bench(loaded, out, executor=executor)
    rows, names = write_outputs(loaded, out)
    print(
        f"\nran {summary.ran} (ok {summary.ok}, failed {summary.failed}, skipped "
        f"{summary.skipped}); {summary.resumed} already done"
        + (f"; {summary.corrupt_lines} corrupt line(s) ignored" if summary.corrupt_lines else "")
    )
    print(f"wrote {out / 'leaderboard.md'}, {out / 'leaderboard.csv'} and {out / 'report.html'}")
    return 0

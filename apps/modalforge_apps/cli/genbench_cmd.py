"""``modalforge genbench BENCH.yaml --out DIR``: train and judge text-to-image generators."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_genbench(args: argparse.Namespace) -> int:
    from modalforge import io
    from modalforge_apps.generation.benchmark import run_genbench
    from modalforge_apps.generation.config import load_config
    from modalforge_apps.generation.report import summary_rows, write_genbench_report

    out = io.check_output_dir(args.out, "--out")
    config = load_config(args.config)
    result = run_genbench(config, Path(args.config).resolve().parent, out)
    report = write_genbench_report(out / "report.html", result.results, result.grids)
    print()
    for generator, measure, value in summary_rows(result.results):
        print(f"  {generator:<10} {measure:<45} {value}")
    print(f"\nwrote {out / 'results.json'} and {report}")
    return 0

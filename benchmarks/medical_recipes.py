"""Train every medical recipe at full size and report its time and final metrics.

Each recipe runs as ``modalforge train recipe:NAME --out OUT/NAME`` in a child process (so the
figures are what a user sees), one after another; wall time and the child's CPU time (user +
system, all threads) come from ``resource.getrusage``. The first run generates the synthetic
studies into the cache; the data generation is timed apart (``--cache``) so that every recipe is
timed on a warm cache, as after the first use. The runs stay in ``OUT`` for
``medical_zeroshot.py`` and ``medical_fusion.py``.

Run: ``.venv/bin/python benchmarks/medical_recipes.py --out runs/medical [--recipes a b]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

RECIPES = ("medical_ct_clip", "medical_ct_fusion", "medical_xray_classifier", "medical_xray_clip")
CLI = Path(sys.executable).with_name("modalforge")


def child_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one child command; a failure stops the benchmark."""
    cpu, start = child_cpu_seconds(), time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return wall, child_cpu_seconds() - cpu


def warm_cache(env: dict[str, str]) -> tuple[float, float]:
    """Generate the synthetic studies every recipe reads (both dims) into the cache."""
    code = (
        "from modalforge.plugin import get_registry\n"
        "from modalforge_medical.synthetic.reader import SyntheticStudies\n"
        "for dims, size in ((2, 64), (3, 32)):\n"
        "    SyntheticStudies(get_registry(), dims=dims, size=size)\n"
    )
    return timed([sys.executable, "-c", code], env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the runs")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=RECIPES)
    parser.add_argument("--cache", type=Path, help="synthetic-data cache (default: OUT/cache)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, MODALFORGE_CACHE=str(args.cache or args.out / "cache"))
    wall, cpu = warm_cache(env)
    print(f"synthetic studies generated (2-D 64², 3-D 32³): wall {wall:.1f} s, CPU {cpu:.1f} s")
    rows = []
    for name in args.recipes:
        run = args.out / name
        if run.exists():
            sys.exit(f"{run} exists: remove it or choose another --out")
        wall, cpu = timed([str(CLI), "train", f"recipe:{name}", "--out", str(run)], env)
        results = json.loads((run / "results.json").read_text())
        metrics = {k: v for k, v in results["metrics"].items() if "ci_" not in k}
        rows.append({"recipe": name, "wall_s": wall, "cpu_s": cpu, "metrics": metrics})
        shown = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if "/" not in k)
        print(f"{name}: wall {wall / 60:.2f} min, CPU {cpu / 60:.2f} min | {shown}", flush=True)
    (args.out / "recipes.json").write_text(json.dumps(rows, indent=2))
    print(f"cores: {os.cpu_count()}; wrote {args.out / 'recipes.json'}")


if __name__ == "__main__":
    main()

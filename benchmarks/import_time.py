"""Time ``import modalforge``, plugin loading and ``modalforge --help`` in fresh interpreters.

Run: ``.venv/bin/python benchmarks/import_time.py`` — prints the median of several runs and
which heavy libraries each step pulled in (there should be none before a component is built).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

HEAVY = ("torch", "timm", "transformers", "monai")
STEPS = {
    "python startup (baseline)": "pass",
    "import modalforge": "import modalforge",
    "modalforge --help": "from modalforge_apps.cli import main\ntry: main(['--help'])\n"
    "except SystemExit: pass",
    "load all plugins": "from modalforge.plugin import load_plugins; load_plugins(warn=False)",
}


def run(code: str, repeats: int = 5) -> tuple[float, list[str]]:
    probe = f"\nimport sys; print('heavy:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    times, heavy = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", code + probe], capture_output=True, text=True, check=True
        )
        times.append(time.perf_counter() - start)
        last = out.stdout.strip().splitlines()[-1]
        heavy = [m for m in last.removeprefix("heavy:").split(",") if m]
    return statistics.median(times), heavy


def main() -> None:
    print(f"{'step':<28} {'median s':>9}  heavy modules imported")
    for name, code in STEPS.items():
        seconds, heavy = run(code)
        print(f"{name:<28} {seconds:>9.3f}  {', '.join(heavy) or '-'}")


if __name__ == "__main__":
    main()

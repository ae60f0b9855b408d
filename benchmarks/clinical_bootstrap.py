"""Bootstrap speed of the ``clinical`` metric: the vectorised resampling against a loop of
scikit-learn calls on the same resamples, side by side in one run.

Random multi-class predictions (N cases, K classes); the clinical table of
:func:`modalforge_metrics.clinical_report` with ``--bootstrap`` resamples, for ROC-AUC alone and
for the whole table, against ``sklearn.metrics.roc_auc_score`` called once per class and
resample (timed on ``--loop`` resamples and scaled). CPU time of the process, best of
``--repeat`` runs, so other load on the machine matters less than in wall time.

Run: ``.venv/bin/python benchmarks/clinical_bootstrap.py [--n 3000] [--classes 5]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import roc_auc_score

from modalforge_metrics import clinical_report
from modalforge_metrics.bootstrap import resample_indices


def best_cpu_seconds(fn, repeat: int) -> float:  # noqa: ANN001 - a no-argument callable
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--loop", type=int, default=50, help="resamples timed in the sklearn loop")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    y = rng.integers(0, args.classes, args.n)
    z = rng.normal(size=(args.n, args.classes))
    z[np.arange(args.n), y] += 1.0
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    b = args.bootstrap

    auc = best_cpu_seconds(
        lambda: clinical_report(p, y, report=["auc"], n_bootstrap=b), args.repeat
    )
    table = best_cpu_seconds(lambda: clinical_report(p, y, n_bootstrap=b), args.repeat)
    rows = next(resample_indices(args.n, args.loop, strata=y))

    def loop() -> None:
        for r in rows:
            for c in range(args.classes):
                roc_auc_score(y[r] == c, p[r, c])

    sk = best_cpu_seconds(loop, 1) * b / args.loop
    print(f"{args.n} cases x {args.classes} classes x {b} resamples (CPU seconds, best run)")
    print(f"  clinical_report, AUC only   : {auc:8.3f} s")
    print(f"  clinical_report, full table : {table:8.3f} s")
    print(f"  sklearn roc_auc_score loop  : {sk:8.3f} s (from {args.loop} resamples)")
    print(f"  speed-up on AUC             : {sk / auc:8.1f}x")


if __name__ == "__main__":
    main()

"""Training speed of a recipe at 1 and at 2 torch threads, side by side in one run.

Picks ``train.num_threads`` for the recipes: on a 2-core CPU a stage trained alone (as genbench
trains them, one after another) can take both cores, but small models gain little from a second
thread. Both settings run the engine's ``Trainer.fit`` on the same spec (``step_overhead.py``'s
framework side); fixed costs cancel out (``(T(n2) - T(n1)) / (n2 - n1)`` per step); runs
alternate and repeat, and the best of each setting gives the ratio (as timeit does).

Run: ``.venv/bin/python benchmarks/train_threads.py --recipe shapes_dalle.yaml [a.b=c ...]``
"""

from __future__ import annotations

import functools
import statistics

from step_overhead import arguments, framework, load, per_step_seconds


def main() -> None:
    args = arguments(__doc__, "shapes_dalle.yaml", (5, 25), 2)
    specs = {n: load(args.recipe, [*args.overrides, f"train.num_threads={n}"]) for n in (1, 2)}
    n1, n2 = args.steps
    sides = {n: functools.partial(framework, spec) for n, spec in specs.items()}
    per_step = per_step_seconds(sides, (n1, n2), args.repeats)
    batch = specs[1].data.batch_size
    print(f"recipe {args.recipe}, batch {batch}, steps {n1}->{n2}, {args.repeats} repeats")
    for threads, values in per_step.items():
        runs = ", ".join(f"{v * 1e3:.1f}" for v in values)
        print(
            f"  {threads} thread(s): best {min(values) * 1e3:7.1f} ms/step, median "
            f"{statistics.median(values) * 1e3:7.1f} (runs: {runs})"
        )
    print(f"  speed-up of 2 threads over 1: {min(per_step[1]) / min(per_step[2]):.2f}x (best)")


if __name__ == "__main__":
    main()

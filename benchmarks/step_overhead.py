"""Framework overhead per training step, against a hand-written PyTorch loop over the SAME modules.

Both sides build the pipeline from one spec (same seed: same encoders, projections and loss),
iterate the same data with a DataLoader, and run AdamW + warmup/cosine. The framework side is
``Trainer.fit``; the hand-written side is the textbook loop. Fixed costs (start-up, the final
checkpoint) cancel out: the per-step time is ``(T(n2) - T(n1)) / (n2 - n1)``. Runs interleave and
repeat; the best run of each side gives the ratio (as timeit does).

Run: ``.venv/bin/python benchmarks/step_overhead.py [--recipe digits_clip.yaml] [a.b=c ...]``
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TypeVar

import torch

from modalforge.engine import Trainer, seed_everything
from modalforge.engine.data import collate_samples
from modalforge.pipeline import build_pipeline
from modalforge.spec import load_spec

K = TypeVar("K")


def load(recipe: str, overrides: list[str]):  # noqa: ANN201
    path = resources.files("modalforge_apps.recipes").joinpath(recipe)
    quiet = [
        "data.eval_split=null",
        "train.progress=false",
        "train.tensorboard=false",
        "train.log_every_steps=100000",
        "train.checkpoint_every_epochs=100000",  # per-epoch checkpoints are not step cost
        "train.epochs=1000",
    ]
    with resources.as_file(path) as p:
        return load_spec(p, quiet + overrides)


def framework(spec, steps: int) -> float:  # noqa: ANN001
    spec = spec.model_copy(update={"train": spec.train.model_copy(update={"max_steps": steps})})
    seed_everything(spec.seed)
    pipeline = build_pipeline(spec)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(pipeline, Path(out))
        start = time.perf_counter()
        trainer.fit()
        return time.perf_counter() - start


def handwritten(spec, steps: int) -> float:  # noqa: ANN001
    seed_everything(spec.seed)
    pipeline = build_pipeline(spec)
    model, loss_fn, cfg = pipeline.model, pipeline.loss, spec.train
    data = pipeline.load(spec.data.train_split)
    loader = torch.utils.data.DataLoader(
        data,
        batch_size=spec.data.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(spec.seed),
        collate_fn=functools.partial(collate_samples, collates=pipeline.collates),
    )
    params = [p for m in (model, loss_fn) for p in m.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
        betas=cfg.betas,
        eps=cfg.eps,
    )

    def lr_at(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, steps - cfg.warmup_steps)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    model.train()
    start = time.perf_counter()
    step = 0
    while step < steps:
        for batch in loader:
            loss = loss_fn(model(batch), batch).total
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            sched.step()
            loss_fn.after_optimizer_step()
            step += 1
            if step == steps:
                break
    loss.item()
    return time.perf_counter() - start


def arguments(doc: str, recipe: str, steps: tuple[int, int], repeats: int) -> argparse.Namespace:
    """The command line shared by the step-timing benchmarks: ``--recipe``, ``--steps N1 N2``,
    ``--repeats`` and spec overrides."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--recipe", default=recipe)
    ap.add_argument("--steps", type=int, nargs=2, default=steps, metavar=("N1", "N2"))
    ap.add_argument("--repeats", type=int, default=repeats)
    ap.add_argument("overrides", nargs="*")
    return ap.parse_args()


def per_step_seconds(
    sides: dict[K, Callable[[int], float]], steps: tuple[int, int], repeats: int
) -> dict[K, list[float]]:
    """Seconds per step of each side (a function: steps → seconds), once per repeat; sides
    alternate so that a slow spell of the machine hits them alike."""
    n1, n2 = steps
    out: dict[K, list[float]] = {name: [] for name in sides}
    for _ in range(repeats):
        for name, run in sides.items():
            t1, t2 = run(n1), run(n2)
            out[name].append((t2 - t1) / (n2 - n1))
    return out


def main() -> None:
    args = arguments(__doc__, "digits_clip.yaml", (10, 40), 3)
    spec = load(args.recipe, args.overrides)
    n1, n2 = args.steps
    per_step = per_step_seconds(
        {
            "framework": functools.partial(framework, spec),
            "hand-written": functools.partial(handwritten, spec),
        },
        (n1, n2),
        args.repeats,
    )
    # best-of-N, as timeit does: the least-disturbed run of each side; the median is shown too
    fw, hw = min(per_step["framework"]), min(per_step["hand-written"])
    med = {k: statistics.median(v) for k, v in per_step.items()}
    print(
        f"recipe {args.recipe}, batch {spec.data.batch_size}, torch threads "
        f"{torch.get_num_threads()}, steps {n1}->{n2}, {args.repeats} repeats"
    )
    for name, values in per_step.items():
        runs = ", ".join(f"{v * 1e3:.2f}" for v in values)
        print(
            f"  {name:<13} best {min(values) * 1e3:8.2f} ms/step, median {med[name] * 1e3:8.2f}"
            f" (runs: {runs})"
        )
    ratio_med = med["framework"] / med["hand-written"]
    print(
        f"  overhead ratio framework / hand-written: {fw / hw:.3f} (best), {ratio_med:.3f} (median)"
    )


if __name__ == "__main__":
    main()

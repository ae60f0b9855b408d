"""``modalforge check``, ``train``, ``eval`` and ``demo``: spec → registry → engine."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from modalforge.pipeline import Pipeline, build_pipeline
from modalforge.plugin import get_registry
from modalforge.spec import PipelineSpec, load_spec, validate_components
from modalforge_apps.cli.tree import describe_pipeline


def _load(args: argparse.Namespace) -> PipelineSpec:
    return load_spec(args.spec, list(args.overrides))


def cmd_check(args: argparse.Namespace) -> int:
    spec = _load(args)
    registry = get_registry()
    validate_components(spec, registry)
    pipeline = build_pipeline(spec, registry)
    print(describe_pipeline(pipeline))
    print(f"\nspec {args.spec} is valid")
    return 0


def _is_main_process() -> bool:
    """Under torchrun only rank 0 prints (the engine already writes files on rank 0 only)."""
    import os

    return os.environ.get("RANK", "0") == "0"


def cmd_train(args: argparse.Namespace) -> int:
    from modalforge import io

    spec = _load(args)
    out = Path(args.out or spec.output_dir or Path("runs") / spec.name)
    io.check_output_dir(out, "--out" if args.out else "output_dir")  # before anything is built
    resume = None
    if args.resume:
        from modalforge.engine import resolve_checkpoint

        resume = Path(args.resume)
        resolve_checkpoint(resume)  # a bad --resume fails before anything is built
    result = _train(spec, out, resume=resume)
    if _is_main_process():
        _print_metrics(result.metrics, title=f"held-out metrics ({spec.data.eval_split})")
        print(f"\nrun folder: {out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from modalforge import io
    from modalforge.engine import evaluate

    spec = _load(args)
    if args.output:
        io.check_output_file(args.output, "--output")  # before the evaluation, not after
    pipeline = build_pipeline(spec, get_registry())
    missing = [m for group in args.missing or [] for m in group.split(",") if m]
    metrics = evaluate(pipeline, Path(args.checkpoint), split=args.split, missing=missing)
    title = f"metrics on split {args.split or spec.data.eval_split!r}"
    _print_metrics(metrics, title=title + (f", without {', '.join(missing)}" if missing else ""))
    if args.output:
        io.write_json(args.output, metrics)
        print(f"\nwrote {args.output}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job: a small CLIP on the built-in digits, evaluated and reported."""
    from modalforge_apps.demo import run_demo

    result = run_demo(Path(args.out), list(args.overrides))
    print(f"\nwrote {result.out / 'metrics.json'} and {result.out / 'report.html'}")
    return 0


def _train(spec: PipelineSpec, out: Path, resume: Path | None):  # noqa: ANN202
    from modalforge.engine import seed_everything, train

    seed_everything(spec.seed)  # initial weights are part of what the seed reproduces
    pipeline: Pipeline = build_pipeline(spec, get_registry())
    if _is_main_process():
        print(describe_pipeline(pipeline), end="\n\n")
    return train(pipeline, out, resume=resume)


def _print_metrics(metrics: dict[str, float], title: str) -> None:
    print(title)
    width = max((len(k) for k in metrics), default=0)
    for key, value in metrics.items():
        shown = f"{value:.4f}" if isinstance(value, float) else json.dumps(value)
        print(f"  {key:<{width}}  {shown}")

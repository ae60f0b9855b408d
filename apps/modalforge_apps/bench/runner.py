"""Run a grid's cells × seeds, one JSON line per finished run in ``results.jsonl``.

Resumable: runs already ``ok`` in ``results.jsonl`` are not rerun. ``grid.json`` pins the grid's
hash so a folder is never mixed between two different grids.

Peak memory: on CUDA, ``torch.cuda.max_memory_allocated`` (reset before each run). On CPU the
only honest figure is the process's peak resident set size (``getrusage``), a high-water mark
since the process started: in a sequential run it never decreases from one run to the next, so
it bounds a run's memory from above. ``peak_mem_kind`` says which one a record holds.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modalforge import io
from modalforge_apps.bench.executors import Executor, Job, local_executor
from modalforge_apps.bench.grid import Cell, GridError, LoadedGrid, check_cells
from modalforge_apps.bench.results import RESULTS_FILE, read_results

GRID_FILE = "grid.json"


@dataclass
class BenchSummary:
    """What one ``bench`` invocation did."""

    ran: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    resumed: int = 0  # runs already ok from an earlier invocation
    corrupt_lines: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)


def pin_grid(loaded: LoadedGrid, out: Path) -> None:
    """Write ``grid.json`` on first use; refuse a folder that holds a different grid's results."""
    digest = loaded.digest()
    pin = out / GRID_FILE
    if pin.exists():
        try:
            stored = json.loads(pin.read_text()).get("grid_hash")
        except (json.JSONDecodeError, OSError, AttributeError):
            stored = None
        if stored != digest:
            raise GridError(
                f"{out} holds results of a different grid (grid hash {stored}, this grid "
                f"{digest}): the base spec, axes or seeds changed",
                hint="choose another --out folder, or restore the original grid",
            )
        return
    if (out / RESULTS_FILE).exists():
        raise GridError(
            f"{out / RESULTS_FILE} exists but {pin} does not, so its grid is unknown",
            hint="choose another --out folder",
        )
    io.write_json(
        pin,
        {
            "grid_hash": digest,
            "name": loaded.name,
            "base": loaded.base,
            "axes": loaded.grid.axes,
            "seeds": loaded.seeds,
            "cells": [{"cell_id": c.cell_id, "label": c.label} for c in loaded.cells],
        },
    )


def run_bench(
    loaded: LoadedGrid,
    out: str | Path,
    *,
    registry: Any = None,
    workers: int = 1,
    registry_factory: Callable[[], Any] | None = None,
    executor: Executor | None = None,
    log: Callable[[str], None] = print,
) -> BenchSummary:
    """Validate every cell, then run the unfinished cell × seed runs into ``out``.

    Runs execute on ``executor`` (see :mod:`modalforge_apps.bench.executors`, e.g. a
    ``RayExecutor``), by default the local one: in-process, or ``workers`` spawned processes.
    ``registry_factory`` (picklable, e.g. a module-level function) gives worker processes their
    registry when ``workers > 1``; by default they load the installed plugins. Whatever the
    executor, this process appends each record to ``results.jsonl`` as its run finishes.
    """
    if registry is None:
        from modalforge.plugin import get_registry

        registry = get_registry()
    check_cells(loaded, registry)  # unknown components: GridError before anything runs
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pin_grid(loaded, out)
    existing, corrupt = read_results(out / RESULTS_FILE)
    summary = BenchSummary(corrupt_lines=corrupt)
    if corrupt:
        log(f"warning: {corrupt} unreadable line(s) in {out / RESULTS_FILE} ignored; rerunning")
    done = {r["run_id"] for r in existing if r.get("status") == "ok"}
    todo = [
        (c, s, f) for c in loaded.cells for s, f in loaded.replicates if c.run_id(s, f) not in done
    ]
    summary.resumed = len(loaded.cells) * len(loaded.replicates) - len(todo)
    if summary.resumed:
        log(f"{summary.resumed} run(s) already finished; {len(todo)} to go")
    rollout = loaded.grid.rollout.model_dump() if loaded.grid.rollout is not None else None
    jobs = [
        Job(
            _meta(c, s, f, rollout),
            loaded.cell_dict(c, s, f),
            str(out / "runs" / c.run_id(s, f)),
        )
        for c, s, f in todo
    ]

    def record(rec: dict[str, Any]) -> None:
        io.append_line(out / RESULTS_FILE, json.dumps(rec, default=str))
        summary.ran += 1
        setattr(summary, rec["status"], getattr(summary, rec["status"]) + 1)
        summary.records.append(rec)
        extra = f"  {rec['error']['type']}: {rec['error']['message']}" if rec.get("error") else ""
        log(f"[{summary.ran}/{len(jobs)}] {rec['run_id']} {rec['label']}: {rec['status']}{extra}")

    if executor is None:
        executor = local_executor(workers, registry_factory)
    executor.run(jobs, record, registry=registry)
    return summary


def _meta(
    cell: Cell, seed: int, fold: int | None = None, rollout: dict[str, Any] | None = None
) -> dict[str, Any]:
    meta = {
        "cell_id": cell.cell_id,
        "run_id": cell.run_id(seed, fold),
        "label": cell.label,
        "seed": seed,
        "overrides": cell.overrides,
    }
    if fold is not None:
        meta["fold"] = fold
    if rollout is not None:
        meta["rollout"] = rollout
    return meta


_WORKER_REGISTRY: Any = None


def _init_worker(threads: int, registry_factory: Callable[[], Any] | None) -> None:
    import torch

    global _WORKER_REGISTRY
    torch.set_num_threads(threads)
    if registry_factory is not None:
        _WORKER_REGISTRY = registry_factory()


def run_one(
    meta: dict[str, Any], spec_dict: dict[str, Any], run_dir: str, *, registry: Any = None
) -> dict[str, Any]:
    """Build, train and time one run; never raises — failures become the record's ``error``."""
    import torch

    from modalforge.engine import Trainer, seed_everything, train
    from modalforge.errors import SpecError
    from modalforge.pipeline import build_pipeline
    from modalforge.spec import parse_spec

    if registry is None:
        registry = _WORKER_REGISTRY
    if registry is None:
        from modalforge.plugin import get_registry

        registry = get_registry()
    rec: dict[str, Any] = {**meta, "status": "ok", "time": time.time()}
    start = time.perf_counter()
    try:
        spec = parse_spec(spec_dict)
        seed_everything(spec.seed)
        try:
            pipeline = build_pipeline(spec, registry)
        except SpecError as exc:  # e.g. sizes that do not fit: an incompatible combination
            return {**rec, "status": "skipped", "error": _error(exc)}
        model = pipeline.model
        rec["params_total"] = sum(p.numel() for p in model.parameters())
        rec["params_trainable"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
        shutil.rmtree(run_dir, ignore_errors=True)  # an earlier failed attempt of this run
        device = spec.train.device
        cuda = torch.cuda.is_available() and (device == "auto" or device.startswith("cuda"))
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        result = train(pipeline, run_dir)
        rec["metrics"] = dict(result.metrics)
        rec["train_seconds"] = result.train_seconds
        n_train = len(pipeline.load(spec.data.train_split))
        rec["train_samples_per_s"] = n_train * result.epochs / max(result.train_seconds, 1e-9)
        rec["infer_samples_per_s"] = _inference_rate(Trainer, pipeline)
        if meta.get("rollout"):
            rec["metrics"].update(_closed_loop(spec, run_dir, meta["rollout"], registry))
        robustness = _robustness(pipeline)
        if robustness is not None:
            rec["robustness"] = robustness
            for mod, auc in robustness["auc"].items():
                rec["metrics"][f"noise_auc_{mod}"] = auc
            for mod, value in robustness["missing"].items():
                rec["metrics"][f"missing_{mod}_accuracy"] = value
        if cuda:
            rec["peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
            rec["peak_mem_kind"] = "cuda_max_allocated"
        else:
            rec["peak_mem_mb"] = _peak_rss_mb()
            rec["peak_mem_kind"] = "process_peak_rss"
    except Exception as exc:  # noqa: BLE001 - one failing run must not stop the grid
        rec.update(status="failed", error=_error(exc))
    rec["run_seconds"] = time.perf_counter() - start  # build, train, evaluate, robustness
    rec["time"] = time.time()
    return rec


def _inference_rate(trainer_cls: Any, pipeline: Any) -> float | None:
    """Samples/s of one evaluation pass (forward + metrics) over the eval split."""
    split = pipeline.spec.data.eval_split
    if split is None:
        return None
    trainer = trainer_cls(pipeline, None)
    try:
        start = time.perf_counter()
        trainer.evaluate(split)
        seconds = time.perf_counter() - start
    finally:
        trainer.close()
    return len(pipeline.load(split)) / max(seconds, 1e-9)


def _closed_loop(spec: Any, run_dir: str, config: dict[str, Any], registry: Any) -> dict:
    """The run's policy rolled out in the grid's environment (see ``RolloutConfig``)."""
    from modalforge.deps import require
    from modalforge.pipeline import load_trained

    require("gymnasium", extra="robotics")
    from modalforge_robotics.rollout.evaluate import closed_loop_metrics

    trained = load_trained(spec, run_dir, registry=registry)
    params = {k: v for k, v in config.items() if k not in ("env", "episodes")}
    return closed_loop_metrics(trained, config["env"], config["episodes"], **params)


def _robustness(pipeline: Any) -> dict[str, Any] | None:
    """Accuracy under Gaussian noise (levels 0–1) on each modality and with each one missing.

    ``auc`` is the area under accuracy-vs-noise over the levels, divided by their range (see
    :func:`modalforge.evaluation.robustness.normalized_auc`). Classification pipelines only.
    """
    import torch

    from modalforge.contracts import TargetKind
    from modalforge.evaluation import evaluate_robustness
    from modalforge.pipeline import MultimodalModel

    spec, model, target = pipeline.spec, pipeline.model, pipeline.dataset.target
    split = spec.data.eval_split
    if (
        split is None
        or not isinstance(model, MultimodalModel)
        or model.head.output_key != "logits"
        or target is None
        or target.kind != TargetKind.MULTICLASS
    ):
        return None
    from functools import partial

    from modalforge.engine.data import collate_samples

    loader = torch.utils.data.DataLoader(
        pipeline.load(split),
        batch_size=spec.data.eval_batch_size or spec.data.batch_size,
        collate_fn=partial(collate_samples, collates=pipeline.collates),
    )

    def accuracy(logits: Any, targets: Any) -> float:
        return float((logits.argmax(-1) == targets).float().mean())

    device = next(model.parameters()).device
    result = evaluate_robustness(
        model, loader, accuracy, list(model.encoders), device=device, seed=spec.seed
    )
    return {
        "metric": "accuracy",
        "clean": result["clean"],
        "noise": {m: {str(k): v for k, v in c.items()} for m, c in result["noise"].items()},
        "missing": result["missing"],
        "auc": result["auc"],
    }


def _peak_rss_mb() -> float:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes vs KiB


def _error(exc: BaseException) -> dict[str, str]:
    tb = traceback.extract_tb(exc.__traceback__)
    where = f"{tb[-1].filename}:{tb[-1].lineno}" if tb else ""
    return {"type": type(exc).__name__, "message": str(exc), "where": where}

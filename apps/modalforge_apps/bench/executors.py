"""Where a grid's runs execute: in this process, in local worker processes, or on a Ray cluster.

An executor only runs jobs and hands each finished run's record back to the driver; the driver
(:func:`modalforge_apps.bench.runner.run_bench`) appends it to ``results.jsonl`` at once and
decides what to skip on resume, so every executor has the same record and resume semantics: a
killed driver loses at most the runs in flight, and a failing run is a ``failed`` record while
the others go on.

Ray is optional (``pip install 'modalforge[ray]'``) and imported only by :class:`RayExecutor`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Protocol

from modalforge.errors import ModalforgeError

Record = dict[str, Any]
OnDone = Callable[[Record], None]


class ExecutorError(ModalforgeError):
    """An executor cannot start: a bad setting or an unreachable cluster."""


@dataclass(frozen=True)
class Job:
    """One cell × seed run: its record's identity, its spec dict and its run folder."""

    meta: dict[str, Any]
    spec_dict: dict[str, Any]
    run_dir: str

    @property
    def run_id(self) -> str:
        return self.meta["run_id"]


class Executor(Protocol):
    """Runs jobs, calling ``on_done(record)`` in the driver as each one finishes."""

    def run(self, jobs: Sequence[Job], on_done: OnDone, *, registry: Any) -> None:
        """``registry`` is the driver's; executors that run in other processes ignore it."""


class SequentialExecutor:
    """One run after another in this process, with the driver's registry."""

    def run(self, jobs: Sequence[Job], on_done: OnDone, *, registry: Any) -> None:
        from modalforge_apps.bench.runner import run_one

        for job in jobs:
            on_done(run_one(job.meta, job.spec_dict, job.run_dir, registry=registry))


class ProcessPoolBenchExecutor:
    """``workers`` spawned local processes sharing the machine's cores.

    ``registry_factory`` (picklable, e.g. a module-level function) gives each worker its
    registry; by default workers load the installed plugins.
    """

    def __init__(self, workers: int, registry_factory: Callable[[], Any] | None = None) -> None:
        self.workers = workers
        self.registry_factory = registry_factory

    def run(self, jobs: Sequence[Job], on_done: OnDone, *, registry: Any) -> None:
        import multiprocessing

        from modalforge_apps.bench.runner import _init_worker, run_one

        threads = max(1, (os.cpu_count() or 1) // self.workers)
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            self.workers,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(threads, self.registry_factory),
        ) as pool:
            pending = {pool.submit(run_one, job.meta, job.spec_dict, job.run_dir) for job in jobs}
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    on_done(fut.result())


def local_executor(workers: int = 1, registry_factory: Callable[[], Any] | None = None) -> Executor:
    """The ``--workers N`` executor: in-process for 1, a spawned process pool above."""
    if workers <= 1:
        return SequentialExecutor()
    return ProcessPoolBenchExecutor(workers, registry_factory)


class RayExecutor:
    """Each run is a Ray task: one GPU per run where the cluster has GPUs, else ``num_cpus``.

    ``address`` connects to a running cluster (``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``);
    without it a local Ray instance is started (``init_num_cpus`` cores, default all) and shut
    down at the end. If Ray is already initialised in this process, that instance is used and
    left running. ``num_gpus`` overrides the per-run GPU count (default: 1 if the cluster
    reports any GPU, else 0). Workers load the installed plugins, or call ``registry_factory``
    (picklable) for their registry; every node needs modalforge and the plugins installed, and
    the ``--out`` folder should be on storage all nodes share (run folders are written by the
    workers, ``results.jsonl`` by the driver).

    Ray is imported here, so a missing install fails before anything runs.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: float = 1.0,
        num_gpus: float | None = None,
        init_num_cpus: int | None = None,
        registry_factory: Callable[[], Any] | None = None,
        max_retries: int = 1,
        init_kwargs: dict[str, Any] | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        from modalforge.deps import require
        from modalforge.errors import MissingDependencyError

        if num_cpus <= 0:
            raise ExecutorError(
                f"cpus per run must be positive, got {num_cpus}",
                hint="pass --ray-cpus-per-cell 1 (or more)",
            )
        if num_gpus is not None and num_gpus < 0:
            raise ExecutorError(
                f"gpus per run must be 0 or more, got {num_gpus}",
                hint="pass --ray-gpus-per-cell 1, or 0 for CPU only",
            )
        try:
            self._ray = require("ray", extra="ray")
        except MissingDependencyError as exc:
            raise MissingDependencyError(
                f"--executor ray needs the optional package 'ray', which is not installed "
                f"({exc.__cause__})",
                hint="pip install 'modalforge[ray]' (or use the local executor: --workers N)",
            ) from exc
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.init_num_cpus = init_num_cpus
        self.registry_factory = registry_factory
        self.max_retries = max_retries
        self.init_kwargs = dict(init_kwargs or {})
        self.log = log
        self.resources: dict[str, float] = {}  # per run, set by run()

    def _connect(self) -> bool:
        """Initialise Ray if needed; True when this call started it (so we shut it down)."""
        ray = self._ray
        if ray.is_initialized():
            return False
        kwargs: dict[str, Any] = {"include_dashboard": False, **self.init_kwargs}
        if self.address:
            kwargs["address"] = self.address
        elif self.init_num_cpus is not None:
            kwargs["num_cpus"] = self.init_num_cpus
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            what = (
                f"connect to the Ray cluster at {self.address!r}" if self.address else "start Ray"
            )
            raise ExecutorError(
                f"could not {what}: {type(exc).__name__}: {exc}",
                hint="check --ray-address (e.g. HOST:6379, or `auto` on a cluster node) and "
                "that `ray status` works there; omit it to run on a local Ray instance",
            ) from exc
        return True

    def run(self, jobs: Sequence[Job], on_done: OnDone, *, registry: Any) -> None:
        if not jobs:
            return
        ray = self._ray
        started = self._connect()
        try:
            cluster = ray.cluster_resources()
            self.resources = per_run_resources(cluster, self.num_cpus, self.num_gpus)
            cpus, gpus = cluster.get("CPU", 0), cluster.get("GPU", 0)
            self.log(
                f"ray: cluster of {cpus:g} CPU(s), {gpus:g} GPU(s); each run takes "
                f"{self.resources['num_cpus']:g} CPU(s), {self.resources['num_gpus']:g} GPU(s)"
            )
            if self.resources["num_cpus"] > cpus or self.resources["num_gpus"] > gpus:
                self.log(
                    "warning: no node can take a run yet; they wait until the cluster grows "
                    "(lower --ray-cpus-per-cell / --ray-gpus-per-cell if it never will)"
                )
            task = ray.remote(_ray_run).options(**self.resources, max_retries=self.max_retries)
            threads = max(1, int(self.num_cpus))
            by_ref = {}
            for job in jobs:
                args = (job.meta, job.spec_dict, job.run_dir, threads, self.registry_factory)
                by_ref[task.remote(*args)] = job
            pending = list(by_ref)
            try:
                while pending:
                    finished, pending = ray.wait(pending, num_returns=1)
                    for ref in finished:
                        job = by_ref[ref]
                        try:
                            rec = ray.get(ref)
                        except Exception as exc:  # noqa: BLE001 - worker died: a failed run
                            rec = _lost(job, exc)
                        on_done(rec)
            finally:
                for ref in pending:  # interrupted: do not leave runs going without a driver
                    ray.cancel(ref, force=True)
        finally:
            if started:
                ray.shutdown()


def per_run_resources(
    cluster: dict[str, float], num_cpus: float, num_gpus: float | None
) -> dict[str, float]:
    """Ray resources of one run: ``num_cpus``, and one GPU if the cluster has any (unless
    ``num_gpus`` says otherwise). Runs without a GPU see none (Ray hides them)."""
    if num_gpus is None:
        num_gpus = 1.0 if cluster.get("GPU", 0) > 0 else 0.0
    return {"num_cpus": float(num_cpus), "num_gpus": float(num_gpus)}


def _ray_run(
    meta: dict[str, Any],
    spec_dict: dict[str, Any],
    run_dir: str,
    threads: int,
    registry_factory: Callable[[], Any] | None,
) -> Record:
    """The Ray task: one run in a Ray worker, with its CPU share as torch's thread count."""
    import torch

    from modalforge_apps.bench.runner import run_one

    torch.set_num_threads(threads)
    registry = registry_factory() if registry_factory is not None else None
    return run_one(meta, spec_dict, run_dir, registry=registry)


def _lost(job: Job, exc: BaseException) -> Record:
    """The record of a run whose worker died (``run_one`` itself never raises)."""
    cause = getattr(exc, "cause", None) or exc
    message = str(cause).strip().splitlines()
    return {
        **job.meta,
        "status": "failed",
        "time": time.time(),
        "error": {
            "type": type(cause).__name__,
            "message": message[0] if message else type(cause).__name__,
            "where": "ray worker",
        },
    }

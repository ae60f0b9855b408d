"""The training loop: epochs of accumulated, clipped, mixed-precision optimizer steps
(``train.optimizer`` / ``train.scheduler``), with evaluation, atomic checkpoints, exact resume,
and the run hooks of callbacks, loggers and plugins (see :mod:`modalforge.engine.run`).

The hot loop keeps loss sums and the non-finite flag on the device; the host reads them only at
``train.log_every_steps`` intervals and before an evaluation or a checkpoint.

Started by ``torchrun`` with several processes, the same loop trains data-parallel (see
:mod:`modalforge.engine.distributed`): ``data.batch_size`` is per process, and process 0 alone
evaluates and writes.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from modalforge.contracts import CustomTrainStep
from modalforge.engine.batchnorm import (
    check_batch_size,
    eval_mode,
    training_batch_norms,
    warn_skipped,
)
from modalforge.engine.checkpoint import load_checkpoint, save_checkpoint, step_dir_name
from modalforge.engine.checkpoint_files import CHECKPOINTS_DIR
from modalforge.engine.data import EpochLoader, batch_size_of, loader_workers
from modalforge.engine.distributed import no_sync, setup
from modalforge.engine.evaluation import run_evaluation
from modalforge.engine.logging import MetricLogger, Progress
from modalforge.engine.results import (
    TrainResult,
    refuse_to_overwrite,
    write_results,
    write_spec,
)
from modalforge.engine.resume import resume_notes
from modalforge.engine.run import RunContext, RunHooks
from modalforge.engine.runtime import (
    Precision,
    capture_rng_state,
    prefetch_to_device,
    restore_rng_state,
    seed_everything,
)
from modalforge.engine.schedule import build_optimizers, build_schedulers, logged_rates
from modalforge.engine.step import StepContext
from modalforge.engine.tracking import RunningMeans, update_best
from modalforge.errors import SpecError
from modalforge.evaluation.encode import unwrap_model
from modalforge.evaluation.robustness import check_withheld, withhold
from modalforge.io import check_output_dir
from modalforge.pipeline import Pipeline


class Trainer:
    """Trains and evaluates one :class:`~modalforge.pipeline.Pipeline`, writing into ``out_dir``.

    ``out_dir`` receives ``spec.yaml``, ``metrics.jsonl``, ``tensorboard/``, ``checkpoints/`` and
    ``results.json``. With ``out_dir=None`` nothing is written (evaluation only).

    Under ``torchrun`` the constructor joins (or starts) the process group; :meth:`close` ends
    it. Only process 0 writes into ``out_dir``.
    """

    def __init__(self, pipeline: Pipeline, out_dir: str | Path | None) -> None:
        self.pipeline = pipeline
        self.spec = pipeline.spec
        self.cfg = pipeline.spec.train
        self.out_dir = Path(out_dir) if out_dir is not None else None
        if self.out_dir is not None:  # a file there fails now, not at the first checkpoint
            check_output_dir(self.out_dir, "out_dir")
        if self.cfg.num_threads is not None:
            torch.set_num_threads(self.cfg.num_threads)
        self.dist, self.device = setup(self.cfg.device)
        self.is_main = self.dist.is_main
        self.precision = Precision(self.cfg.precision, self.device)
        self.model = pipeline.model.to(self.device)
        self.custom = isinstance(self.model, CustomTrainStep)
        self.loss = None if self.custom else pipeline.loss
        if self.custom and self.cfg.grad_accum_steps > 1:
            raise SpecError(
                "train.grad_accum_steps",
                f"{type(self.model).__name__} runs its own "
                "training step, which does not accumulate gradients",
                hint="remove train.grad_accum_steps (or set it to 1)",
            )
        if not self.custom and self.loss is None:
            raise SpecError(
                "loss",
                "a model without its own training step needs a loss",
                hint="add e.g. `loss: cross_entropy`",
            )
        if self.loss is not None:
            self.loss.to(self.device)
        if self.cfg.compile:
            self.model.compile()  # in place: state-dict keys stay unprefixed
        self.metrics = dict(pipeline.metrics)
        self.logger = MetricLogger(
            self.out_dir if self.is_main else None, tensorboard=self.cfg.tensorboard
        )
        self._ddp: torch.nn.Module | None = None  # DDP over model + loss, in fit()
        self._grad_sync = None  # averages gradients of custom training steps across processes
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}
        self.step = 0
        self.epoch = 0
        self.best: dict[str, Any] | None = None
        self.last_checkpoint: Path | None = None
        self._loaders: dict[str, EpochLoader] = {}
        self._ctx: StepContext | None = None
        self._bar: Progress | None = None
        self._batch_in_epoch = 0
        self._seconds_before = 0.0
        self._total_steps = 0
        self._started = time.perf_counter()
        self.hooks: RunHooks | None = None  # the run's plugin manager, in fit()
        self.run = RunContext(self)
        self.stopped: dict[str, Any] | None = None
        self._norms: list[torch.nn.Module] = []  # batch-norm layers that train
        self._lone_batches = 0

    # ---------------------------------------------------------------- public API
    def fit(self, resume: str | Path | None = None) -> TrainResult:
        """Train to ``train.epochs`` / ``train.max_steps``, continuing from ``resume`` if given."""
        if self.out_dir is None:
            raise ValueError("Trainer.fit needs an out_dir")
        cfg = self.cfg
        self._started = time.perf_counter()
        seed_everything(self.spec.seed + self.dist.rank)  # e.g. dropout masks differ per process
        parts = self._train_parts()
        self._set_train_mode()
        self._norms = training_batch_norms(self.model, self.loss)
        check_batch_size(self.spec.data.batch_size, self._norms)
        train = self._loader(self.spec.data.train_split, train=True)
        nb = train.batches_per_epoch
        total = cfg.epochs * math.ceil(nb / cfg.grad_accum_steps)
        if cfg.max_steps is not None:
            total = min(total, cfg.max_steps)
        self._total_steps = total
        self.optimizers = build_optimizers(self.model, self.loss, cfg, self.device, parts.optimizer)
        self.schedulers = build_schedulers(self.optimizers, cfg, total, parts.scheduler)
        from modalforge.plugin import get_host

        self.hooks = RunHooks(
            get_host().plugins, parts.callbacks, parts.loggers, is_main=self.is_main
        )
        self.run, self.stopped, self._lone_batches = RunContext(self), None, 0
        if self._ddp is None:
            self._ddp, self._grad_sync = self.dist.prepare(
                self.model, self.loss, self.device, find_unused=cfg.ddp_find_unused_parameters
            )
        skip = 0
        if resume is not None:
            skip = self._restore(resume, nb)
        else:
            refuse_to_overwrite(self.out_dir)
            self.logger.reset()
            self.pipeline.fit_transforms(self.spec.data.train_split)
        if self.is_main:
            write_spec(self.out_dir, self.spec)
        self._ctx = StepContext(
            self.optimizers,
            self.schedulers,
            precision=self.precision,
            clip_grad_norm=cfg.clip_grad_norm,
            grad_sync=self._grad_sync,
        )
        self._ctx.global_step = self.step
        tracker = RunningMeans(self.device)
        evaluated: tuple[int, dict[str, float]] | None = None
        self.hooks.on_train_start(self.run)
        try:
            while self.step < total and self.epoch < cfg.epochs:
                consumed = self._train_epoch(train, skip, total, tracker)
                skip = 0
                finished = consumed >= nb
                self._batch_in_epoch = 0 if finished else consumed
                self._flush_train(tracker)
                self.epoch += int(finished)
                stop = self._stop_requested()
                done = stop or self.step >= total or self.epoch >= cfg.epochs
                if done or (finished and self.epoch % cfg.eval_every_epochs == 0):
                    evaluated = (self.step, self._evaluate_in_run())
                    stop = self._stop_requested()
                if stop or done or (finished and self.epoch % cfg.checkpoint_every_epochs == 0):
                    self._checkpoint(evaluated)
                if stop:
                    break
            if evaluated is None or evaluated[0] != self.step:
                evaluated = (self.step, self._evaluate_in_run())
            if not self._checkpoint_is_current():
                self._checkpoint(evaluated)
        finally:
            self.logger.close()
        result = self._write_results(evaluated[1])
        self.hooks.on_train_end(self.run, result)
        self.dist.barrier()
        return result

    def evaluate(self, split: str | None = None, missing: Sequence[str] = ()) -> dict[str, float]:
        """Mean eval loss and metrics on ``split`` (default ``data.eval_split``); logged.

        ``missing``: modalities withheld from every sample (mask False, values zeroed; see
        :func:`~modalforge.evaluation.robustness.corrupt_batch`), to measure how a model trained
        with ``model.modality_dropout`` does when a study lacks them. Not logged.
        """
        split = split or self.spec.data.eval_split
        if split is None:
            raise SpecError(
                "data.eval_split",
                "no evaluation split is configured",
                hint="set data.eval_split, or name a split to evaluate",
            )
        splits = tuple(self.pipeline.dataset.splits)
        if split not in splits:
            raise SpecError(
                "data.eval_split",
                f"the data set has no split {split!r}",
                hint=f"use one of: {', '.join(splits)}",
            )
        encoders = getattr(unwrap_model(self.model), "encoders", None) or ()
        missing = check_withheld(missing, tuple(encoders))
        results = None
        if self.is_main:  # the whole split on process 0; the others wait for its numbers
            loader = self._loader(split, train=False)
            batches = loader.epoch(0)
            if missing:
                batches = (withhold(batch, missing) for batch in batches)
            results = run_evaluation(
                self.model,
                batches,
                precision=self.precision,
                loss=self.loss,
                metrics=self.metrics,
                progress=self.cfg.progress,
                total=loader.batches_per_epoch,
                desc=f"eval {split}",
            )
            if results and not missing:
                self._log(step=self.step, epoch=self.epoch, split=split, values=results)
        return self.dist.broadcast(results)

    def load_weights(self, checkpoint: str | Path) -> Path:
        """Load model (and loss) weights only, e.g. to evaluate a finished run."""
        state = load_checkpoint(checkpoint, model=self.model, loss=self.loss)
        self.pipeline.load_transform_state((state.get("trainer") or {}).get("transforms"))
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        return Path(state["path"])

    def close(self) -> None:
        """End the process group this trainer started (a no-op in a single process)."""
        self._ddp = None  # it holds the process group
        self.dist.close()

    # ---------------------------------------------------------------- setup
    def _train_parts(self) -> Any:  # noqa: ANN401 - a TrainParts
        if self.pipeline.train_parts is None:  # a Pipeline assembled by hand
            from modalforge.pipeline.train_parts import build_train_parts
            from modalforge.plugin import get_registry

            self.pipeline.train_parts = build_train_parts(self.spec, get_registry())
        return self.pipeline.train_parts

    def _set_train_mode(self) -> None:
        self.model.train()
        if self.loss is not None:
            self.loss.train()

    def _loader(self, split: str, *, train: bool) -> EpochLoader:
        key = f"{'train' if train else 'eval'}:{split}"
        if key not in self._loaders:
            d = self.spec.data
            shard = train and self.dist.enabled  # evaluation runs whole on process 0
            self._loaders[key] = EpochLoader(
                self.pipeline.load(split, train=train),
                batch_size=d.batch_size if train else (d.eval_batch_size or d.batch_size),
                shuffle=train,
                seed=self.spec.seed,
                num_workers=loader_workers(d.num_workers, self.device, self.dist.world_size),
                drop_last=d.drop_last and train,
                pin_memory=self.device.type == "cuda",
                field=f"data.{'train_split' if train else 'eval_split'} ({split!r})",
                rank=self.dist.rank if shard else 0,
                world_size=self.dist.world_size if shard else 1,
                drop_lone_last=train and bool(self._norms),
                collates=self.pipeline.collates,
            )
        return self._loaders[key]

    def _restore(self, resume: str | Path, batches_per_epoch: int) -> int:
        state = load_checkpoint(
            resume,
            model=self.model,
            loss=self.loss,
            optimizers=self.optimizers,
            schedulers=self.schedulers,
            restore_rng=True,
        )
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.best = state.get("best")
        self.last_checkpoint = Path(state["path"])
        extra = state.get("trainer") or {}
        self.pipeline.load_transform_state(extra.get("transforms"))
        self._seconds_before = float(extra.get("train_seconds", 0.0))
        ranks_rng = extra.get("rng_ranks")
        if ranks_rng and len(ranks_rng) == self.dist.world_size:
            restore_rng_state(ranks_rng[self.dist.rank])  # rank 0's is already restored
        skip, notes = resume_notes(
            extra,
            self.last_checkpoint,
            world_size=self.dist.world_size,
            batches_per_epoch=batches_per_epoch,
            scheduler=self.cfg.scheduler.name,
        )
        for note in notes if self.is_main else ():
            warnings.warn(note, stacklevel=3)
        self.hooks.load_state(extra.get("callbacks") or {})
        self.logger.truncate_after(self.step)
        return skip

    # ---------------------------------------------------------------- the loop
    def _train_epoch(self, train: EpochLoader, skip: int, total: int, tracker: RunningMeans) -> int:
        """Run the current epoch from batch ``skip``; returns the batches consumed in it."""
        cfg, ctx, nb = self.cfg, self._ctx, train.batches_per_epoch
        accum = cfg.grad_accum_steps
        self._set_train_mode()
        lone_before = self._lone_batches
        group_live = False  # a micro-batch of the current accumulation group ran backward
        batches = prefetch_to_device(train.epoch(self.epoch, skip), self.device)
        self._bar = Progress(
            batches,
            total=nb,
            initial=skip,
            enabled=cfg.progress and self.is_main,
            desc=f"epoch {self.epoch + 1}/{cfg.epochs}",
        )
        consumed = skip
        try:
            for i, batch in enumerate(self._bar, start=skip):
                consumed = i + 1
                lone = bool(self._norms) and batch_size_of(batch) < 2  # shapes only: no sync
                skipped = lone and not self.dist.enabled  # see modalforge.engine.batchnorm
                self._lone_batches += int(skipped)
                norms = eval_mode(self._norms) if lone and not skipped else contextlib.nullcontext()
                if self.custom:
                    if skipped:
                        continue
                    ctx.zero_grad()
                    with norms:
                        values = self.model.training_step(batch, ctx)
                    tracker.add(values or {}, self.step + 1)
                else:
                    first = (i // accum) * accum
                    size = min(accum, nb - first)  # the epoch's last group may be shorter
                    last = i - first == size - 1
                    if not skipped:
                        with no_sync(self._ddp, sync=last), norms:
                            with self.precision.context():
                                out = self._forward(batch)
                            ctx.backward(out.total / size)
                        tracker.add(
                            {"loss": out.total, **{f"loss_{k}": v for k, v in out.parts.items()}},
                            self.step + 1,
                        )
                        group_live = True
                    if not last or not group_live:
                        continue  # mid-group, or a group of skipped batches: no step
                    group_live = False
                    ctx.step("model")
                    self.loss.after_optimizer_step()
                ctx.finish()
                self.step += 1
                self.hooks.after_step(self.run, self.step)
                if self.step % cfg.log_every_steps == 0:
                    self._flush_train(tracker)
                    if self.dist.enabled and self._stop_requested():
                        break
                if self.step >= total or (self.run.stop and not self.dist.enabled):
                    break
        finally:
            self._bar.close()
        if self._lone_batches > lone_before and self.is_main:
            warn_skipped(self.spec.data.train_split, self._lone_batches - lone_before, self)
        return consumed

    def _forward(self, batch: dict[str, Any]) -> Any:  # noqa: ANN401 - a LossOutput
        if self._ddp is not None:
            return self._ddp(batch)[1]
        return self.loss(self.model(batch), batch)

    def _flush_train(self, tracker: RunningMeans) -> None:
        """Log the means since the last flush; stop on a non-finite value (one host sync)."""
        tracker.synchronize(self.dist)  # means over all processes
        tracker.raise_if_diverged(self.epoch, self.last_checkpoint)
        means = tracker.pop_means()
        if not means:
            return
        for name, norm in self._ctx.grad_norms.items():
            means["grad_norm" if name == "model" else f"grad_norm_{name}"] = float(norm)
        lr, rates = logged_rates(self.optimizers, self.schedulers, self.cfg, self._ctx.lr)
        means.update(rates)
        self._log(step=self.step, epoch=self.epoch, split="train", values=means, lr=lr)
        if self._bar is not None:
            self._bar.set_postfix({k: v for k, v in means.items() if k == "loss"} or means)

    def _evaluate_if_configured(self) -> dict[str, float]:
        if self.spec.data.eval_split is None:
            return {}
        return self.evaluate()

    def _evaluate_in_run(self) -> dict[str, float]:
        metrics = self._evaluate_if_configured()
        if metrics:
            self.hooks.after_evaluation(self.run, self.spec.data.eval_split, metrics)
        return metrics

    def _log(self, **record: Any) -> None:  # noqa: ANN401
        written = self.logger.log(**record)
        if self.hooks is not None:
            self.hooks.log_metrics(self.run, written)

    def _stop_requested(self) -> bool:
        """Whether a hook asked to stop (process 0's request, under torchrun: a collective)."""
        if self.dist.enabled:
            self.run.stop = self.dist.broadcast(self.run.stop)
        if self.run.stop is not None and self.stopped is None:
            self.stopped = {**self.run.stop, "step": self.step, "epoch": self.epoch}
        return self.run.stop is not None

    # ---------------------------------------------------------------- outputs
    def _checkpoint(self, evaluated: tuple[int, dict[str, float]] | None) -> None:
        metrics = evaluated[1] if evaluated and evaluated[0] == self.step else {}
        self.best = update_best(
            self.best, metrics, self.cfg, step=self.step, checkpoint=step_dir_name(self.step)
        )
        extra: dict[str, Any] = {}
        transforms = self.pipeline.transform_state()
        if transforms:
            extra["transforms"] = transforms
        dataset_state = self.pipeline.dataset.state_dict()
        if dataset_state:
            extra["dataset"] = dataset_state
        if self.dist.enabled:
            extra["world_size"] = self.dist.world_size
            extra["rng_ranks"] = self.dist.all_gather_object(capture_rng_state())
        if not self.is_main:
            self.last_checkpoint = self.out_dir / CHECKPOINTS_DIR / step_dir_name(self.step)
            self.dist.barrier()  # process 0 writes
            return
        self.last_checkpoint = save_checkpoint(
            self.out_dir,
            model=self.model,
            loss=self.loss,
            optimizers=self.optimizers,
            schedulers=self.schedulers,
            step=self.step,
            epoch=self.epoch,
            spec_name=self.spec.name,
            best=self.best,
            keep=self.cfg.keep_checkpoints,
            extra={
                "batch_in_epoch": self._batch_in_epoch,
                "batches_per_epoch": self._loader(
                    self.spec.data.train_split, train=True
                ).batches_per_epoch,
                "train_seconds": self._seconds(),
                "total_steps_planned": self._total_steps,
                "optimizer": self.cfg.optimizer.name,
                "scheduler": self.cfg.scheduler.name,
                "callbacks": self.hooks.state() if self.hooks is not None else {},
                **extra,
            },
        )
        if self.hooks is not None:
            self.hooks.after_checkpoint(self.run, self.last_checkpoint)
        self.dist.barrier()

    def _checkpoint_is_current(self) -> bool:
        last = self.last_checkpoint
        return (
            last is not None
            and last.name == step_dir_name(self.step)
            and last.parent.resolve() == (self.out_dir / CHECKPOINTS_DIR).resolve()
        )

    def _seconds(self) -> float:
        return self._seconds_before + (time.perf_counter() - self._started)

    def _write_results(self, metrics: dict[str, float]) -> TrainResult:
        best_path = None
        if self.best and self.best.get("checkpoint"):
            best_path = self.out_dir / CHECKPOINTS_DIR / self.best["checkpoint"]
        result = TrainResult(
            metrics=dict(metrics),
            steps=self.step,
            epochs=self.epoch,
            train_seconds=round(self._seconds(), 3),
            checkpoint=self.last_checkpoint,
            best_checkpoint=best_path,
            best=self.best,
            stopped=self.stopped,
            skipped_batches=self._lone_batches,
        )
        if self.is_main:
            write_results(self.out_dir, self.spec.name, result)
        return result

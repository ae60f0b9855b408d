"""What run hooks see of a training run (:class:`RunContext`), and the run's own plugin manager
(:class:`RunHooks`) that calls them (see :mod:`modalforge.plugin.run_hooks`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modalforge.plugin.run_hooks import RUN_HOOKS, RunPluginManager

if TYPE_CHECKING:
    from modalforge.contracts import Callback, RunLogger
    from modalforge.engine.results import TrainResult
    from modalforge.engine.trainer import Trainer
    from modalforge.spec import PipelineSpec


class RunContext:
    """The run as hooks see it: spec, output folder, progress, and a way to stop it cleanly.

    ``step``, ``epoch`` and ``best`` are live views of the trainer (``best`` is the best-checkpoint
    record ``{"metric", "mode", "value", "step", "checkpoint"}`` or ``None``).
    """

    def __init__(self, trainer: Trainer) -> None:
        self._trainer = trainer
        self.stop: dict[str, Any] | None = None

    @property
    def spec(self) -> PipelineSpec:
        return self._trainer.spec

    @property
    def out_dir(self) -> Path:
        return self._trainer.out_dir

    @property
    def step(self) -> int:
        return self._trainer.step

    @property
    def epoch(self) -> int:
        return self._trainer.epoch

    @property
    def best(self) -> dict[str, Any] | None:
        return self._trainer.best

    @property
    def is_main(self) -> bool:
        return self._trainer.is_main

    @property
    def rank(self) -> int:
        return self._trainer.dist.rank

    @property
    def world_size(self) -> int:
        return self._trainer.dist.world_size

    def request_stop(self, reason: str, *, by: str = "callback") -> None:
        """End training after this step (or evaluation): a final checkpoint is written and
        ``results.json`` records ``{"stopped": {"by", "reason", "step", "epoch"}}``. The first
        request wins. Under ``torchrun`` process 0's request is what counts; it is honoured at the
        next log interval or evaluation (where the processes synchronise anyway)."""
        if self.stop is None:
            self.stop = {"by": by, "reason": reason}


def implements_run_hooks(pm: RunPluginManager, plugin: object) -> bool:
    return any(pm.parse_hookimpl_opts(plugin, name) is not None for name in RUN_HOOKS)


class RunHooks:
    """One run's plugin manager: the process-wide plugins that implement a run hook, then the
    spec's callbacks (every process) and loggers (process 0 only), in that order."""

    def __init__(
        self,
        host_plugins: Mapping[str, object],
        callbacks: list[tuple[str, Callback]],
        loggers: list[tuple[str, RunLogger]],
        *,
        is_main: bool,
    ) -> None:
        self.pm = RunPluginManager()
        self.is_main = is_main
        for name, plugin in host_plugins.items():
            if implements_run_hooks(self.pm, plugin):
                self.pm.register(plugin, name=f"plugin {name}")
        for path, obj in [*callbacks, *(loggers if is_main else [])]:
            self.pm.register(obj, name=path)
        self.stateful = dict(callbacks)
        hook = self.pm.hook
        self._wanted = {name: bool(getattr(hook, name).get_hookimpls()) for name in RUN_HOOKS}

    def on_train_start(self, run: RunContext) -> None:
        if self._wanted["on_train_start"]:
            self.pm.hook.on_train_start(run=run)

    def after_step(self, run: RunContext, step: int) -> None:
        if self._wanted["after_step"]:  # every step: skip pluggy's call when nobody listens
            self.pm.hook.after_step(run=run, step=step)

    def log_metrics(self, run: RunContext, record: Mapping[str, Any]) -> None:
        """``record`` as written to ``metrics.jsonl``."""
        if self.is_main and self._wanted["log_metrics"]:
            values = {k: v for k, v in record.items() if k not in ("step", "epoch", "split")}
            self.pm.hook.log_metrics(
                run=run,
                step=record["step"],
                epoch=record["epoch"],
                split=record["split"],
                values=values,
            )

    def after_evaluation(self, run: RunContext, split: str, metrics: Mapping[str, float]) -> None:
        if self._wanted["after_evaluation"]:
            self.pm.hook.after_evaluation(run=run, split=split, metrics=dict(metrics))

    def after_checkpoint(self, run: RunContext, path: Path) -> None:
        if self.is_main and self._wanted["after_checkpoint"]:
            self.pm.hook.after_checkpoint(run=run, path=path)

    def on_train_end(self, run: RunContext, result: TrainResult) -> None:
        if self._wanted["on_train_end"]:
            self.pm.hook.on_train_end(run=run, result=result)

    def state(self) -> dict[str, Any]:
        """The spec callbacks' ``state_dict()``, by field path, for the checkpoint."""
        return {path: cb.state_dict() for path, cb in self.stateful.items()}

    def load_state(self, saved: Mapping[str, Any]) -> None:
        for path, cb in self.stateful.items():
            if path in saved:
                cb.load_state_dict(saved[path])

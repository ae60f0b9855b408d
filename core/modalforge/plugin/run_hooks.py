"""Hooks called during a training run (pluggy project name ``modalforge``).

Each run has its own :class:`RunPluginManager` with these hookspecs. The trainer registers on it
every loaded plugin that implements one of them (module-level functions decorated with
:data:`modalforge.plugin.hookimpl`, so an installed plugin can add a callback to every run) and
one object per callback and logger the spec names (``train.callbacks``, ``train.loggers``), whose
methods need no decorator. Then it calls them through the hook relay, e.g.
``pm.hook.after_evaluation(run=..., split=..., metrics=...)``.

An implementation may accept any subset of a hook's arguments, by name. ``log_metrics`` and
``after_checkpoint`` are called on process 0 only; the other hooks on every process of a
``torchrun`` job.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from modalforge.plugin.hookspecs import PROJECT, hookspec

if TYPE_CHECKING:
    from modalforge.engine.results import TrainResult
    from modalforge.engine.run import RunContext

RUN_HOOKS: tuple[str, ...] = (
    "on_train_start",
    "after_step",
    "log_metrics",
    "after_evaluation",
    "after_checkpoint",
    "on_train_end",
)


@hookspec
def on_train_start(run: RunContext) -> None:
    """Before the first step of the run (after ``--resume`` restored it: ``run.step`` > 0)."""


@hookspec
def after_step(run: RunContext, step: int) -> None:
    """After every optimizer step; ``step`` counts the steps taken. Gets no tensors: reading one
    here would synchronise the host with the GPU on every step."""


@hookspec
def log_metrics(
    run: RunContext, step: int, epoch: int, split: str, values: Mapping[str, Any]
) -> None:
    """Every record written to ``metrics.jsonl`` (train means at log intervals, evaluation
    results); ``values`` holds the record's numbers besides step, epoch and split. Process 0."""


@hookspec
def after_evaluation(run: RunContext, split: str, metrics: Mapping[str, float]) -> None:
    """After an evaluation during training, with the same (broadcast) results on every process."""


@hookspec
def after_checkpoint(run: RunContext, path: Path) -> None:
    """After checkpoint folder ``path`` is complete on disk. Process 0."""


@hookspec
def on_train_end(run: RunContext, result: TrainResult) -> None:
    """After ``results.json`` is written; ``result`` is what ``Trainer.fit`` returns."""


_PLAIN_IMPL: dict[str, Any] = {
    "wrapper": False,
    "hookwrapper": False,
    "optionalhook": False,
    "tryfirst": False,
    "trylast": False,
    "specname": None,
}


class RunPluginManager(pluggy.PluginManager):
    """A plugin manager for one run's hooks that also accepts undecorated methods of
    :class:`~modalforge.contracts.Callback` objects named like a run hook (pytest does the same for
    its ``pytest_`` prefix). Methods left as the base class's no-ops are not registered."""

    def __init__(self) -> None:
        super().__init__(PROJECT)
        self.add_hookspecs(sys.modules[__name__])

    def parse_hookimpl_opts(self, plugin: object, name: str) -> Any:  # noqa: ANN401 - pluggy's type
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is not None or name not in RUN_HOOKS:
            return opts
        from modalforge.contracts.callback import Callback, RunLogger

        if not isinstance(plugin, Callback):
            return None
        impl = getattr(type(plugin), name, None)
        if not callable(impl) or impl in (getattr(Callback, name), getattr(RunLogger, name)):
            return None
        return dict(_PLAIN_IMPL)

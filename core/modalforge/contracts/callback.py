"""Training callbacks and extra loggers: objects whose methods are the run hooks.

A spec names them (``train.callbacks``, ``train.loggers``); the trainer registers each on the
run's own pluggy plugin manager, so a method named like a hook of
:mod:`modalforge.plugin.run_hooks` is that hook's implementation, with no decorator. A method may
take any subset of the hook's arguments, by name. Only the methods a subclass overrides are
registered, so an unused hook costs nothing.

Callbacks run on every process of a ``torchrun`` job (their decisions, such as stopping, must not
depend on which process they run in: evaluation results are broadcast, so they are the same
everywhere). Loggers run on process 0 only, the one that writes the run folder.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modalforge.engine.results import TrainResult
    from modalforge.engine.run import RunContext


class Callback:
    """Reacts to a run: after each optimizer step, each evaluation, each checkpoint.

    ``after_step`` runs after every optimizer step and receives only the step number: reading a
    tensor there would make the GPU wait for the host every step. Call ``run.request_stop(reason,
    by=...)`` to end training cleanly (final checkpoint, ``results.json`` says why).
    """

    def on_train_start(self, run: RunContext) -> None:
        """Before the first step (after a resume has restored the state: ``run.step`` > 0)."""

    def after_step(self, run: RunContext, step: int) -> None:
        """After optimizer step ``step`` (1-based: the number of steps taken so far)."""

    def log_metrics(
        self, run: RunContext, step: int, epoch: int, split: str, values: Mapping[str, float]
    ) -> None:
        """Every record written to ``metrics.jsonl`` (process 0 only)."""

    def after_evaluation(self, run: RunContext, split: str, metrics: Mapping[str, float]) -> None:
        """After evaluating ``split`` during training; ``metrics`` as in ``metrics.jsonl``."""

    def after_checkpoint(self, run: RunContext, path: Path) -> None:
        """After the checkpoint folder ``path`` is complete on disk (process 0 only)."""

    def on_train_end(self, run: RunContext, result: TrainResult) -> None:
        """After ``results.json`` is written."""

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to continue this callback (JSON values), saved with every
        checkpoint; ``load_state_dict`` gets it back on ``--resume``."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:  # noqa: B027 - optional
        """Restore what :meth:`state_dict` returned."""


class RunLogger(Callback, ABC):
    """Sends metric records somewhere besides ``metrics.jsonl`` and TensorBoard (process 0 only).

    Implement :meth:`log_metrics` (and :meth:`on_train_start` to open files under
    ``run.out_dir``; ``run.step`` tells a resumed run where its records continue).
    """

    @abstractmethod
    def log_metrics(
        self, run: RunContext, step: int, epoch: int, split: str, values: Mapping[str, Any]
    ) -> None:
        """Every record written to ``metrics.jsonl``."""

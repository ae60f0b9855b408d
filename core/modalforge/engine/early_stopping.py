"""The built-in ``early_stopping`` callback: stop when an evaluation metric stops improving."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field

from modalforge.contracts.callback import Callback
from modalforge.engine.run import RunContext
from modalforge.engine.tracking import metric_mode
from modalforge.errors import SpecError


class EarlyStopping(Callback):
    """Stops training after ``patience`` evaluations in a row without an improvement of more
    than ``min_delta`` in ``metric`` (default: ``train.best_metric``, else the eval loss).

    ``mode`` ``auto`` is ``min`` for loss- and error-like names, else ``max`` (as
    ``train.best_mode``, which it follows when ``metric`` is ``train.best_metric``). The run then
    ends cleanly: a final checkpoint, the best one kept, and ``results.json`` says when and why.
    The counters are saved with each checkpoint, so a resumed run continues them.
    """

    def __init__(
        self,
        metric: str | None = None,
        mode: Literal["auto", "min", "max"] = "auto",
        patience: Annotated[int, Field(gt=0)] = 3,
        min_delta: Annotated[float, Field(ge=0)] = 0.0,
    ) -> None:
        self.metric = metric
        self.mode = mode
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.best: float | None = None
        self.best_step: int | None = None
        self.bad = 0

    def _resolved(self, run: RunContext) -> tuple[str, str]:
        cfg = run.spec.train
        name = self.metric or cfg.best_metric or "loss"
        mode = self.mode
        if mode == "auto" and name == cfg.best_metric:
            mode = cfg.best_mode
        return name, metric_mode(name, mode)

    def on_train_start(self, run: RunContext) -> None:
        if run.step == 0:  # a fresh run (a resumed one got its counters from the checkpoint)
            self.load_state_dict({})
        if run.spec.data.eval_split is None:
            raise SpecError(
                "train.callbacks",
                "early_stopping watches an evaluation metric, but data.eval_split is null",
                hint="set data.eval_split, or remove early_stopping",
            )

    def after_evaluation(self, run: RunContext, metrics: Mapping[str, float]) -> None:
        name, mode = self._resolved(run)
        if name not in metrics:
            raise SpecError(
                "train.callbacks",
                f"early_stopping: metric {name!r} is not among the evaluation results "
                f"({', '.join(sorted(metrics))})",
                hint="set its `metric` param to one of those names",
            )
        value = float(metrics[name])
        if math.isfinite(value) and (
            self.best is None
            or (
                value < self.best - self.min_delta
                if mode == "min"
                else value > self.best + self.min_delta
            )
        ):
            self.best, self.best_step, self.bad = value, run.step, 0
            return
        self.bad += 1
        if self.bad >= self.patience:
            best = (
                "none finite"
                if self.best is None
                else f"best {self.best:.6g} at step {self.best_step}"
            )
            run.request_stop(
                f"{name} did not improve by more than {self.min_delta:g} ({mode}) in "
                f"{self.patience} evaluation(s); {best}",
                by="early_stopping",
            )

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_step": self.best_step, "bad": self.bad}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best = state.get("best")
        self.best_step = state.get("best_step")
        self.bad = int(state.get("bad", 0))

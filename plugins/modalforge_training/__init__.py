"""Built-in training choices: optimizers (``adamw``, ``adam``, ``sgd``), learning-rate schedules
(``warmup_cosine``, ``linear``, ``constant``, ``step``), the ``early_stopping`` callback and the
``csv`` logger. The implementations live in :mod:`modalforge.engine`; this plugin registers them
by name, as any third-party plugin would register its own."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge.engine.csv_logger import CsvLogger
from modalforge.engine.early_stopping import EarlyStopping
from modalforge.engine.optim import SGD, Adam, AdamW, Constant, Linear, StepDecay, WarmupCosine
from modalforge.plugin import hookimpl

if TYPE_CHECKING:
    from modalforge.registry import Registrar

__all__ = ["register_components"]


@hookimpl
def register_components(registry: Registrar) -> None:
    registry.optimizer("adamw", AdamW, tags=("default",))
    registry.optimizer("adam", Adam)
    registry.optimizer("sgd", SGD, tags=("momentum", "nesterov"))
    registry.scheduler("warmup_cosine", WarmupCosine, tags=("default",))
    registry.scheduler("linear", Linear)
    registry.scheduler("constant", Constant)
    registry.scheduler("step", StepDecay)
    registry.callback("early_stopping", EarlyStopping)
    registry.logger("csv", CsvLogger)

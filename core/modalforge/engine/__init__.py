"""The PyTorch training engine: trainer, optimisation step, checkpoints, logging.

Exports are imported lazily: ``modalforge.spec`` imports :mod:`modalforge.engine.config`, which
must not pull in the trainer (and with it the pipeline builder) on the way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge.lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "TrainConfig": "modalforge.engine.config",
    "Trainer": "modalforge.engine.trainer",
    "TrainResult": "modalforge.engine.results",
    "NonFiniteLossError": "modalforge.engine.tracking",
    "OutputExistsError": "modalforge.engine.results",
    "train": "modalforge.engine.api",
    "evaluate": "modalforge.engine.api",
    "StepContext": "modalforge.engine.step",
    "save_checkpoint": "modalforge.engine.checkpoint",
    "load_checkpoint": "modalforge.engine.checkpoint",
    "resolve_checkpoint": "modalforge.engine.checkpoint",
    "read_state": "modalforge.engine.checkpoint",
    "seed_everything": "modalforge.engine.runtime",
    "select_device": "modalforge.engine.runtime",
    "gather_with_grad": "modalforge.engine.distributed",
}

__all__ = [
    "NonFiniteLossError",
    "OutputExistsError",
    "StepContext",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "evaluate",
    "gather_with_grad",
    "load_checkpoint",
    "read_state",
    "resolve_checkpoint",
    "save_checkpoint",
    "seed_everything",
    "select_device",
    "train",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)


if TYPE_CHECKING:  # pragma: no cover
    from modalforge.engine.api import evaluate, train
    from modalforge.engine.checkpoint import (
        load_checkpoint,
        read_state,
        resolve_checkpoint,
        save_checkpoint,
    )
    from modalforge.engine.config import TrainConfig
    from modalforge.engine.distributed import gather_with_grad
    from modalforge.engine.results import OutputExistsError, TrainResult
    from modalforge.engine.runtime import seed_everything, select_device
    from modalforge.engine.step import StepContext
    from modalforge.engine.tracking import NonFiniteLossError
    from modalforge.engine.trainer import Trainer

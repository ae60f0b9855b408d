"""Built-in supervised losses: ``cross_entropy``, ``bce_with_logits`` and ``mse``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge.plugin import hookimpl
from modalforge_losses.supervised import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss

if TYPE_CHECKING:
    from modalforge.registry import Registrar

__all__ = ["BCEWithLogitsLoss", "CrossEntropyLoss", "MSELoss", "register_components"]


@hookimpl
def register_components(registry: Registrar) -> None:
    registry.loss("cross_entropy", CrossEntropyLoss, tags=("multiclass",))
    registry.loss("bce_with_logits", BCEWithLogitsLoss, tags=("multilabel", "binary"))
    registry.loss("mse", MSELoss, tags=("regression",))

"""Built-in losses: supervised ``cross_entropy``, ``bce_with_logits``, ``mse``; contrastive
``clip`` and ``siglip``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge.plugin import hookimpl
from modalforge_losses.contrastive import ClipLoss, SigLipLoss
from modalforge_losses.supervised import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss

if TYPE_CHECKING:
    from modalforge.registry import Registrar

__all__ = [
    "BCEWithLogitsLoss",
    "ClipLoss",
    "CrossEntropyLoss",
    "MSELoss",
    "SigLipLoss",
    "register_components",
]


@hookimpl
def register_components(registry: Registrar) -> None:
    registry.loss("cross_entropy", CrossEntropyLoss, tags=("multiclass",))
    registry.loss("bce_with_logits", BCEWithLogitsLoss, tags=("multilabel", "binary"))
    registry.loss("mse", MSELoss, tags=("regression",))
    registry.loss("clip", ClipLoss, tags=("contrastive", "infonce"))
    registry.loss("siglip", SigLipLoss, tags=("contrastive", "sigmoid"))

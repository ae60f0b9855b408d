"""Built-in fusions of pooled per-modality features (``concat``, ``mean``), mask aware."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge.plugin import hookimpl
from modalforge_fusion.concat import ConcatFusion
from modalforge_fusion.mean import MeanFusion

if TYPE_CHECKING:
    from modalforge.registry import Registrar

__all__ = ["ConcatFusion", "MeanFusion", "register_components"]


@hookimpl
def register_components(registry: Registrar) -> None:
    registry.fusion("concat", ConcatFusion, tags=("late",))
    registry.fusion("mean", MeanFusion, tags=("late",))

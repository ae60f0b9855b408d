"""Built-in heads: ``classification``, ``regression`` and ``projection``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge.plugin import hookimpl
from modalforge_heads.heads import ClassificationHead, ProjectionHead, RegressionHead

if TYPE_CHECKING:
    from modalforge.registry import Registrar

__all__ = ["ClassificationHead", "ProjectionHead", "RegressionHead", "register_components"]


@hookimpl
def register_components(registry: Registrar) -> None:
    registry.head("classification", ClassificationHead, tags=("multiclass", "multilabel"))
    registry.head("regression", RegressionHead, tags=("regression",))
    registry.head("projection", ProjectionHead, tags=("embedding",))

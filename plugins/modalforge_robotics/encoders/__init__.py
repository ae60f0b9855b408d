"""Observation encoders of the robotics domain."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge_robotics.encoders.layers import FiLM, SpatialSoftmax
from modalforge_robotics.encoders.timm_visual import TimmVisualEncoder
from modalforge_robotics.encoders.visual import VisualEncoder

if TYPE_CHECKING:
    from modalforge.registry import Registrar

__all__ = ["FiLM", "SpatialSoftmax", "TimmVisualEncoder", "VisualEncoder", "register"]


def register(registry: Registrar) -> None:
    registry.encoder("visual", VisualEncoder, tags=("robotics", "image2d", "depth", "film"))
    registry.encoder(
        "timm_visual", TimmVisualEncoder, tags=("robotics", "image2d", "depth", "film", "timm")
    )

"""The ``timm`` encoder: any timm image model as a modalforge encoder.

timm itself is imported only when an encoder is built, so loading this plugin stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge.plugin import hookimpl
from modalforge_timm.encoder import TimmEncoder

if TYPE_CHECKING:
    from modalforge.registry import Registrar

__all__ = ["TimmEncoder", "register_components"]


@hookimpl
def register_components(registry: Registrar) -> None:
    registry.encoder("timm", TimmEncoder, tags=("image2d", "depth", "pretrained"))

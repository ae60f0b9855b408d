"""The ``monai_net`` encoder: MONAI's 2-D/3-D networks for medical images.

MONAI is imported only when an encoder is built, so loading this plugin stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge.plugin import hookimpl
from modalforge_monai.encoder import NETWORKS, MonaiNetEncoder

if TYPE_CHECKING:
    from modalforge.registry import Registrar

__all__ = ["NETWORKS", "MonaiNetEncoder", "register_components"]


@hookimpl
def register_components(registry: Registrar) -> None:
    registry.encoder("monai_net", MonaiNetEncoder, tags=("volume3d", "image2d", "medical"))

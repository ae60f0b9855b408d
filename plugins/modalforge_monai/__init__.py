"""MONAI encoders for medical images and volumes (2-D and 3-D), sized from the modality.

``monai_net`` (DenseNet, ResNet, EfficientNet-BN; pooled), ``monai_vit`` (ViT; pooled or token
sequence) and ``monai_swin`` (SwinUNETR's Swin encoder; multi-scale maps pooled). Each loads
optional local ``weights`` (:mod:`modalforge_monai.weights`). MONAI is imported only when an
encoder is built, so loading this plugin stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge.plugin import hookimpl
from modalforge_monai.nets import NETWORKS, MonaiNetEncoder
from modalforge_monai.swin import MonaiSwinEncoder
from modalforge_monai.vit import MonaiViTEncoder

if TYPE_CHECKING:
    from modalforge.registry import Registrar

__all__ = [
    "NETWORKS",
    "MonaiNetEncoder",
    "MonaiSwinEncoder",
    "MonaiViTEncoder",
    "register_components",
]

TAGS = ("volume3d", "image2d", "medical")


@hookimpl
def register_components(registry: Registrar) -> None:
    registry.encoder("monai_net", MonaiNetEncoder, tags=TAGS)
    registry.encoder("monai_vit", MonaiViTEncoder, tags=(*TAGS, "tokens"))
    registry.encoder("monai_swin", MonaiSwinEncoder, tags=TAGS)

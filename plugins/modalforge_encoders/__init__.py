"""Built-in pure-PyTorch encoders: ``mlp``, ``cnn`` and ``embedding``.

A plugin is a package whose ``register_components`` hook adds its factories to the registry; copy
this file's shape for your own plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge.plugin import hookimpl
from modalforge_encoders.cnn import CNNEncoder
from modalforge_encoders.embedding import EmbeddingEncoder
from modalforge_encoders.mlp import MLPEncoder

if TYPE_CHECKING:
    from modalforge.registry import Registrar

__all__ = ["CNNEncoder", "EmbeddingEncoder", "MLPEncoder", "register_components"]


@hookimpl
def register_components(registry: Registrar) -> None:
    registry.encoder("mlp", MLPEncoder, tags=("tabular", "lowdim", "timeseries"))
    registry.encoder("cnn", CNNEncoder, tags=("image2d", "depth", "volume3d"))
    registry.encoder("embedding", EmbeddingEncoder, tags=("text",))

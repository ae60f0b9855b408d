"""Built-in data sets: ``digits`` (bundled with scikit-learn), ``synthetic``, ``tensor_file``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge.plugin import hookimpl
from modalforge_datasets.digits import DigitsDataset
from modalforge_datasets.synthetic import SyntheticDataset
from modalforge_datasets.tensor_file import TensorFileDataset

if TYPE_CHECKING:
    from modalforge.registry import Registrar

__all__ = ["DigitsDataset", "SyntheticDataset", "TensorFileDataset", "register_components"]


@hookimpl
def register_components(registry: Registrar) -> None:
    registry.dataset("digits", DigitsDataset, tags=("image2d", "multiclass", "offline"))
    registry.dataset("synthetic", SyntheticDataset, tags=("multimodal", "offline"))
    registry.dataset("tensor_file", TensorFileDataset, tags=("npz", "safetensors"))

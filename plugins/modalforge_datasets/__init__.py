"""Built-in data sets: your own labelled data (``image_folder``, the multimodal ``manifest`` with
its column loaders ``image``, ``text``, ``tabular``, ``npy``), ``digits`` (bundled with
scikit-learn), ``synthetic``, ``tensor_file``, the image–text readers ``digits_captions``,
``image_text_manifest`` and ``webdataset``, the fusion benchmarks ``interaction`` and
``digits_halves``, and captioned ``shapes``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge.plugin import hookimpl
from modalforge_datasets.digits import DigitsDataset
from modalforge_datasets.digits_captions import DigitsCaptionsDataset, zeroshot_templates
from modalforge_datasets.digits_halves import DigitsHalvesDataset
from modalforge_datasets.image_folder import ImageFolderDataset
from modalforge_datasets.interaction import InteractionDataset
from modalforge_datasets.loaders import ArrayFile, ImageColumn, TabularColumns, TextColumn
from modalforge_datasets.manifest import ImageTextManifestDataset
from modalforge_datasets.multimodal_manifest import ManifestDataset
from modalforge_datasets.shapes import ShapesDataset
from modalforge_datasets.synthetic import SyntheticDataset
from modalforge_datasets.tensor_file import TensorFileDataset
from modalforge_datasets.webdataset import WebDatasetReader

if TYPE_CHECKING:
    from modalforge.registry import Registrar

__all__ = [
    "DigitsCaptionsDataset",
    "DigitsDataset",
    "DigitsHalvesDataset",
    "ImageFolderDataset",
    "ImageTextManifestDataset",
    "InteractionDataset",
    "ManifestDataset",
    "ShapesDataset",
    "SyntheticDataset",
    "TensorFileDataset",
    "WebDatasetReader",
    "register_components",
    "zeroshot_templates",
]


@hookimpl
def register_components(registry: Registrar) -> None:
    registry.dataset("digits", DigitsDataset, tags=("image2d", "multiclass", "offline"))
    registry.dataset("synthetic", SyntheticDataset, tags=("multimodal", "offline"))
    registry.dataset("tensor_file", TensorFileDataset, tags=("npz", "safetensors"))
    registry.dataset(
        "digits_captions", DigitsCaptionsDataset, tags=("image-text", "multiclass", "offline")
    )
    registry.dataset("image_text_manifest", ImageTextManifestDataset, tags=("image-text", "csv"))
    registry.dataset("webdataset", WebDatasetReader, tags=("image-text", "tar"))
    registry.dataset(
        "interaction", InteractionDataset, tags=("multimodal", "fusion-benchmark", "offline")
    )
    registry.dataset(
        "digits_halves", DigitsHalvesDataset, tags=("multimodal", "fusion-benchmark", "offline")
    )
    registry.dataset("image_folder", ImageFolderDataset, tags=("image2d", "multiclass", "folder"))
    registry.dataset("manifest", ManifestDataset, tags=("multimodal", "csv", "parquet"))
    registry.loader("image", ImageColumn, tags=("image2d", "file"))
    registry.loader("text", TextColumn, tags=("text",))
    registry.loader("tabular", TabularColumns, tags=("tabular", "lowdim"))
    registry.loader("npy", ArrayFile, tags=("file", "array"))
    registry.dataset("shapes", ShapesDataset, tags=("image-text", "compositional", "offline"))

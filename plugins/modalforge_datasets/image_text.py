"""What the image–caption readers share: raw RGB images + caption strings, named splits."""

from __future__ import annotations

from typing import ClassVar

from torch.utils.data import Dataset

from modalforge.modality import Modality
from modalforge_datasets.common import SplitsReader


class ImageTextReader(SplitsReader):
    """Base of readers whose samples are ``{"image": PIL RGB image, "text": caption}``.

    Both modalities are raw: the image and text encoders' ``preprocess()`` turn them into tensors.
    Subclasses set ``reader_name``, ``image_size`` and fill ``_splits``.
    """

    reader_name: ClassVar[str] = ""
    image_size: int | None = None
    _splits: dict[str, Dataset]

    @property
    def modalities(self) -> dict[str, Modality]:
        size = self.image_size
        return {
            "image": Modality("image", "image2d", (3, size, size), dtype="image"),
            "text": Modality("text", "text", (None,), dtype="str"),
        }

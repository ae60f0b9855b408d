"""``digits``: scikit-learn's bundled 8×8 handwritten digits, as a small offline image task."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from modalforge.contracts import Target, TargetKind
from modalforge.modality import Modality
from modalforge_datasets.common import (
    TensorDictDataset,
    TrainTestReader,
    stratified_split,
)

CLASS_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@lru_cache(maxsize=1)
def _raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.astype(np.float32), bunch.target.astype(np.int64)


class DigitsDataset(TrainTestReader):
    """1,797 grayscale digits as modality ``image`` ``(1, S, S)`` in ``[0, 1]``, ten classes.

    No download: the data ship with scikit-learn. Images are upsampled bilinearly from 8×8 to
    ``image_size``. The ``train``/``test`` split is stratified and fixed by ``split_seed``.
    """

    reader_name = "digits"

    def __init__(
        self, image_size: int = 8, test_fraction: float = 0.2, split_seed: int = 0
    ) -> None:
        if image_size < 1:
            raise ValueError(f"image_size must be positive, got {image_size}")
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        self.image_size = image_size
        images, labels = _raw()
        x = torch.from_numpy(images / 16.0).unsqueeze(1)
        if image_size != 8:
            x = F.interpolate(
                x, size=(image_size, image_size), mode="bilinear", align_corners=False
            ).clamp_(0.0, 1.0)
        self.all_labels = labels
        self._all = TensorDictDataset({"image": x.contiguous(), "target": torch.from_numpy(labels)})
        self.train_indices, self.test_indices = stratified_split(labels, test_fraction, split_seed)

    @property
    def modalities(self) -> dict[str, Modality]:
        return {"image": Modality("image", "image2d", (1, self.image_size, self.image_size))}

    @property
    def target(self) -> Target:
        return Target(TargetKind.MULTICLASS, 10, CLASS_NAMES)

"""``digits_halves``: scikit-learn digits as two views, the top and the bottom half of each image.

A two-modality task with real (not synthetic) data where each view alone is informative but
incomplete, for benchmarking fusions; it shares the ``digits`` data set's images and its split.
"""

from __future__ import annotations

from modalforge.contracts import Target, TargetKind
from modalforge.modality import Modality
from modalforge_datasets.common import TensorDictDataset, TrainTestReader
from modalforge_datasets.digits import CLASS_NAMES, DigitsDataset


class DigitsHalvesDataset(TrainTestReader):
    """Modalities ``top`` and ``bottom`` (image2d ``(1, S/2, S)``): rows ``[0, S/2)`` and
    ``[S/2, S)`` of the ``digits`` image at ``image_size`` ``S``; ten classes.

    The images, the ``train``/``test`` split and the targets are exactly those of ``digits`` with
    the same ``image_size``, ``test_fraction`` and ``split_seed``, so results compare directly.
    """

    reader_name = "digits_halves"

    def __init__(
        self, image_size: int = 8, test_fraction: float = 0.2, split_seed: int = 0
    ) -> None:
        if image_size < 2 or image_size % 2:
            raise ValueError(f"image_size must be even and at least 2, got {image_size}")
        digits = DigitsDataset(image_size, test_fraction, split_seed)
        self.image_size = image_size
        self.all_labels = digits.all_labels
        self.train_indices, self.test_indices = digits.train_indices, digits.test_indices
        images = digits._all.tensors["image"]  # (N, 1, S, S); same package, so no copy of code
        half = image_size // 2
        self._all = TensorDictDataset(
            {
                "top": images[:, :, :half, :].contiguous(),
                "bottom": images[:, :, half:, :].contiguous(),
                "target": digits._all.tensors["target"],
            }
        )

    @property
    def modalities(self) -> dict[str, Modality]:
        shape = (1, self.image_size // 2, self.image_size)
        return {
            "top": Modality("top", "image2d", shape),
            "bottom": Modality("bottom", "image2d", shape),
        }

    @property
    def target(self) -> Target:
        return Target(TargetKind.MULTICLASS, 10, CLASS_NAMES)

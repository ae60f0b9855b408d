"""``digits_captions``: scikit-learn's digits as image–caption pairs, for CLIP-style training.

Captions are raw strings (the text encoder tokenises them) made from :data:`TEMPLATES` and the
class names; the digit stays as the multiclass target so zero-shot and linear-probe metrics can
score the same data.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from torch.utils.data import Dataset

from modalforge.contracts import DatasetReader, Target
from modalforge.modality import Modality
from modalforge_datasets.common import unknown_split
from modalforge_datasets.digits import CLASS_NAMES, DigitsDataset

# Prompt templates, each with one "{}" for the class. The first is the ``fixed`` caption.
TEMPLATES: tuple[str, ...] = (
    "a photo of the digit {}.",
    "a handwritten {}.",
    "the number {}.",
    "{}",
    "an image of a {}.",
    "a blurry photo of the number {}.",
    "a low resolution image of the digit {}.",
    "a drawing of a {}.",
    "a grayscale picture of a handwritten {}.",
    "the digit {}, written by hand.",
)


def zeroshot_templates() -> list[str]:
    """The caption templates, each with one ``"{}"`` where a class name goes."""
    return list(TEMPLATES)


class DigitsCaptionsDataset(DatasetReader):
    """1,797 digits as modality ``image`` ``(1, S, S)`` in ``[0, 1]`` and raw ``text`` captions.

    Images, target and the ``train``/``test`` split are exactly those of the ``digits`` data set
    with the same ``image_size``, ``test_fraction`` and ``split_seed`` (the same test indices).
    ``caption_mode=random_template`` gives each sample one caption, drawn once from
    ``caption_seed``: a template from :data:`TEMPLATES` filled with the class name, or with the
    numeral ("7") with probability ``numeral_prob``. ``fixed`` captions every sample
    "a photo of the digit <name>.".
    """

    def __init__(
        self,
        image_size: int = 32,
        caption_mode: Literal["random_template", "fixed"] = "random_template",
        numeral_prob: float = 0.0,
        caption_seed: int = 0,
        test_fraction: float = 0.2,
        split_seed: int = 0,
    ) -> None:
        if caption_mode not in ("random_template", "fixed"):
            raise ValueError(f"caption_mode must be random_template or fixed, got {caption_mode!r}")
        if not 0.0 <= numeral_prob <= 1.0:
            raise ValueError(f"numeral_prob must be in [0, 1], got {numeral_prob}")
        self.digits = DigitsDataset(
            image_size=image_size, test_fraction=test_fraction, split_seed=split_seed
        )
        self.image_size = image_size
        self.caption_mode = caption_mode
        self.train_indices, self.test_indices = self.digits.train_indices, self.digits.test_indices
        self.captions = make_captions(
            self.digits.all_labels, caption_mode, numeral_prob, caption_seed
        )

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES

    @property
    def templates(self) -> tuple[str, ...]:
        """Templates with one ``"{}"``, for building zero-shot classifiers from class names."""
        return TEMPLATES

    @property
    def modalities(self) -> dict[str, Modality]:
        size = self.image_size
        return {
            "image": Modality("image", "image2d", (1, size, size)),
            "text": Modality("text", "text", (None,), dtype="str"),
        }

    @property
    def target(self) -> Target:
        return self.digits.target

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", "test")

    def load(self, split: str) -> Dataset:
        if split not in self.splits:
            raise unknown_split("digits_captions", split, self.splits)
        indices = self.train_indices if split == "train" else self.test_indices
        return CaptionedDataset(self.digits.load(split), [self.captions[i] for i in indices])


def make_captions(
    labels: np.ndarray, mode: str, numeral_prob: float = 0.0, seed: int = 0
) -> list[str]:
    """One caption per label, a pure function of its arguments (NumPy's PCG64 stream)."""
    if mode == "fixed":
        return [TEMPLATES[0].format(CLASS_NAMES[y]) for y in labels]
    rng = np.random.default_rng(seed)
    which = rng.integers(len(TEMPLATES), size=len(labels))
    numeral = rng.random(len(labels)) < numeral_prob
    return [
        TEMPLATES[t].format(str(y) if n else CLASS_NAMES[y])
        for t, y, n in zip(which.tolist(), labels.tolist(), numeral.tolist(), strict=True)
    ]


class CaptionedDataset(Dataset):
    """Adds a ``text`` caption to each sample of ``data``."""

    def __init__(self, data: Dataset, captions: list[str]) -> None:
        if len(data) != len(captions):  # type: ignore[arg-type]
            raise ValueError(f"{len(captions)} captions for {len(data)} samples")  # type: ignore[arg-type]
        self.data = data
        self.captions = captions

    def __len__(self) -> int:
        return len(self.captions)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {**self.data[index], "text": self.captions[index]}

"""``interaction``: an image–tabular task whose label needs both modalities at once.

A fusion benchmark needs a task that unimodal models cannot solve: here the image carries a latent
``a`` and the tabular vector a latent ``b``, both uniform and independent, and the label is
``(a + b) mod K`` (XOR for ``K = 2``). Each latent alone is then independent of the label, so any
model of one modality scores chance, and so does a linear model of both for ``K = 2``: only a
fusion that models the interaction (an MLP over the concatenation, bilinear/tensor fusion,
attention, ...) learns the task.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from modalforge.contracts import Target, TargetKind
from modalforge.modality import Modality
from modalforge_datasets.common import (
    TensorDictDataset,
    TrainTestReader,
    stratified_split,
)

TABULAR_SIGNAL = 2.0  # norm of a tabular prototype; the image blob's peak height is 1.


def balanced_latents(num_samples: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """``(N, 2)`` latent pairs ``(a, b)`` cycling through all ``K²`` pairs, then shuffled.

    Cycling makes every pair equally frequent (exactly when ``K²`` divides ``N``), so the label
    ``(a + b) mod K`` is uniform given ``a`` and given ``b`` in the data, not just in expectation.
    """
    cells = np.arange(num_samples) % (num_classes * num_classes)
    cells = rng.permutation(cells)
    return np.stack([cells // num_classes, cells % num_classes], axis=1).astype(np.int64)


def blob_images(
    a: np.ndarray, num_classes: int, image_size: int, noise: float, rng: np.random.Generator
) -> np.ndarray:
    """``(N, 1, S, S)`` images: a Gaussian blob at the ``a``-th of ``K`` points on a circle, plus
    pixel noise of standard deviation ``noise``."""
    centre = (image_size - 1) / 2.0
    radius = image_size / 4.0
    sigma = max(image_size / 10.0, 0.75)
    angles = 2.0 * math.pi * np.arange(num_classes) / num_classes
    rows = centre - radius * np.cos(angles)
    cols = centre + radius * np.sin(angles)
    grid = np.arange(image_size, dtype=np.float64)
    dr = (grid[None, :] - rows[:, None]) ** 2  # (K, S)
    dc = (grid[None, :] - cols[:, None]) ** 2
    blobs = np.exp(-(dr[:, :, None] + dc[:, None, :]) / (2.0 * sigma**2))  # (K, S, S)
    images = blobs[a] + noise * rng.standard_normal((len(a), image_size, image_size))
    return images[:, None].astype(np.float32)


def tabular_vectors(
    b: np.ndarray, num_classes: int, num_features: int, noise: float, rng: np.random.Generator
) -> np.ndarray:
    """``(N, F)`` vectors: the ``b``-th of ``K`` orthogonal prototypes of norm ``TABULAR_SIGNAL``
    (rows of a random rotation), plus Gaussian noise of standard deviation ``noise``."""
    q, _ = np.linalg.qr(rng.standard_normal((num_features, num_features)))
    prototypes = TABULAR_SIGNAL * q[:num_classes]
    x = prototypes[b] + noise * rng.standard_normal((len(b), num_features))
    return x.astype(np.float32)


class InteractionDataset(TrainTestReader):
    """Modalities ``image`` (image2d ``(1, S, S)``) and ``tabular`` (``(F,)``); label
    ``(a + b) mod K`` of the image's latent ``a`` (blob position) and the vector's latent ``b``
    (prototype direction).

    ``latents`` holds the ``(N, 2)`` latent pairs of all samples (indexed like
    ``train_indices``/``test_indices``) for analysis. The split is stratified on the ``(a, b)``
    pair, so every split keeps each modality uninformative on its own.
    """

    reader_name = "interaction"

    def __init__(
        self,
        num_samples: int = 2000,
        image_size: int = 16,
        tabular_features: int = 8,
        noise: float = 0.5,
        num_classes: int = 2,
        test_fraction: float = 0.25,
        seed: int = 0,
    ) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        if num_samples < 2 * num_classes * num_classes:
            raise ValueError(
                f"num_samples must be at least 2 * num_classes**2 = {2 * num_classes**2} so every "
                f"latent pair occurs in both splits, got {num_samples}"
            )
        if image_size < 4:
            raise ValueError(f"image_size must be at least 4, got {image_size}")
        if tabular_features < num_classes:
            raise ValueError(
                f"tabular_features must be at least num_classes ({num_classes}) to hold one "
                f"orthogonal direction per latent value, got {tabular_features}"
            )
        if noise < 0:
            raise ValueError(f"noise must be non-negative, got {noise}")
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        self.num_classes = num_classes
        self.image_size = image_size
        self.tabular_features = tabular_features

        rng = np.random.default_rng([seed, 0x1A7E])
        self.latents = balanced_latents(num_samples, num_classes, rng)
        a, b = self.latents[:, 0], self.latents[:, 1]
        labels = (a + b) % num_classes
        images = blob_images(a, num_classes, image_size, noise, rng)
        vectors = tabular_vectors(b, num_classes, tabular_features, noise, rng)
        self._all = TensorDictDataset(
            {
                "image": torch.from_numpy(images),
                "tabular": torch.from_numpy(vectors),
                "target": torch.from_numpy(labels),
            }
        )
        cells = a * num_classes + b
        self.train_indices, self.test_indices = stratified_split(cells, test_fraction, seed)

    @property
    def modalities(self) -> dict[str, Modality]:
        s = self.image_size
        return {
            "image": Modality("image", "image2d", (1, s, s)),
            "tabular": Modality("tabular", "tabular", (self.tabular_features,)),
        }

    @property
    def target(self) -> Target:
        names = tuple(f"class_{i}" for i in range(self.num_classes))
        return Target(TargetKind.MULTICLASS, self.num_classes, names)

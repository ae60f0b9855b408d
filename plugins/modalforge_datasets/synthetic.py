"""``synthetic``: a configurable multimodal data set whose label is recoverable from every modality.

For tests, examples and benchmarks of the pipeline machinery: each enabled modality holds a
class-dependent signal (a class offset plus a class prototype pattern) plus Gaussian noise.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import Dataset

from modalforge.contracts import DatasetReader, Target, TargetKind
from modalforge.errors import SpecError
from modalforge.modality import Modality
from modalforge_datasets.common import TensorDictDataset, stratified_split, unknown_split


class SyntheticDataset(DatasetReader):
    """Up to four synthetic modalities with a shared class label, each enabled by its size.

    A size parameter of ``None`` leaves its modality out:
    ``image`` (image2d, ``(image2d_channels, S, S)``), ``volume`` (volume3d, ``(1, V, V, V)``),
    ``tabular`` (``(tabular_features,)``) and ``lowdim`` (``(lowdim_features,)``, like a robot's
    proprioception).
    With ``missing_prob > 0`` every modality but the first is absent from a sample with that
    probability (zeroed, and ``masks[m]`` is ``False``), to exercise missing-modality handling.
    """

    def __init__(
        self,
        num_samples: int = 256,
        num_classes: int = 3,
        image2d_size: int | None = 16,
        image2d_channels: int = 1,
        volume_size: int | None = None,
        tabular_features: int | None = None,
        lowdim_features: int | None = None,
        signal: float = 1.0,
        noise: float = 0.5,
        missing_prob: float = 0.0,
        test_fraction: float = 0.25,
        seed: int = 0,
    ) -> None:
        shapes: dict[str, tuple[str, tuple[int, ...]]] = {}
        if image2d_size is not None:
            shapes["image"] = ("image2d", (image2d_channels, image2d_size, image2d_size))
        if volume_size is not None:
            shapes["volume"] = ("volume3d", (1, volume_size, volume_size, volume_size))
        if tabular_features is not None:
            shapes["tabular"] = ("tabular", (tabular_features,))
        if lowdim_features is not None:
            shapes["lowdim"] = ("lowdim", (lowdim_features,))
        if not shapes:
            raise SpecError(
                "data.dataset.params",
                "synthetic needs at least one modality",
                hint="set image2d_size, volume_size, tabular_features or lowdim_features",
            )
        if num_classes < 2 or num_samples < 2 * num_classes:
            raise ValueError(
                f"need num_classes >= 2 and num_samples >= 2 * num_classes, got "
                f"{num_classes} classes, {num_samples} samples"
            )
        if any(d <= 0 for _, shape in shapes.values() for d in shape):
            raise ValueError(f"modality sizes must be positive, got {shapes}")
        if not 0.0 <= missing_prob < 1.0:
            raise ValueError(f"missing_prob must be in [0, 1), got {missing_prob}")
        self.num_classes = num_classes
        self._modalities = {n: Modality(n, kind, shape) for n, (kind, shape) in shapes.items()}

        gen = torch.Generator().manual_seed(seed)
        labels = torch.arange(num_samples) % num_classes
        labels = labels[torch.randperm(num_samples, generator=gen)]
        offsets = torch.linspace(-1.0, 1.0, num_classes)
        tensors: dict[str, Tensor] = {}
        for name, (_, shape) in shapes.items():
            pattern = torch.randn((num_classes, *shape), generator=gen)
            clean = signal * (offsets.view(-1, *[1] * len(shape)) + pattern)
            tensors[name] = clean[labels] + noise * torch.randn(
                (num_samples, *shape), generator=gen
            )
        masks = None
        if missing_prob > 0:
            masks = {}
            for i, name in enumerate(shapes):
                present = torch.ones(num_samples, dtype=torch.bool)
                if i > 0:
                    present = torch.rand(num_samples, generator=gen) >= missing_prob
                    tensors[name][~present] = 0.0
                masks[name] = present
        tensors["target"] = labels
        self._all = TensorDictDataset(tensors, masks)
        self.train_indices, self.test_indices = stratified_split(
            labels.numpy(), test_fraction, seed
        )

    @property
    def modalities(self) -> dict[str, Modality]:
        return dict(self._modalities)

    @property
    def target(self) -> Target:
        names = tuple(f"class_{i}" for i in range(self.num_classes))
        return Target(TargetKind.MULTICLASS, self.num_classes, names)

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", "test") if len(self.test_indices) else ("train",)

    def load(self, split: str) -> Dataset:
        if split == "train":
            return self._all.subset(self.train_indices)
        if split == "test" and len(self.test_indices):
            return self._all.subset(self.test_indices)
        raise unknown_split("synthetic", split, self.splits)

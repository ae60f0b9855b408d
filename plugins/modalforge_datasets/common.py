"""Pieces shared by the readers: an in-memory dict data set, a fixed stratified split, a base for
train/test readers and a fork-friendly list of strings."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from modalforge.contracts import MASKS_KEY, DatasetReader, Target
from modalforge.errors import DataError
from modalforge.modality import Modality


class TensorDictDataset(Dataset):
    """Samples ``{name: tensors[name][i]}`` (plus ``masks`` if given) from equal-length tensors."""

    def __init__(
        self, tensors: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None
    ) -> None:
        lengths = {name: len(t) for name, t in tensors.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"arrays differ in length: {lengths}")
        self.tensors = dict(tensors)
        self.masks = dict(masks) if masks else None
        self._len = next(iter(lengths.values()), 0)

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> dict[str, object]:
        sample: dict[str, object] = {name: t[index] for name, t in self.tensors.items()}
        if self.masks is not None:
            sample[MASKS_KEY] = {name: m[index] for name, m in self.masks.items()}
        return sample

    def subset(self, indices: np.ndarray) -> TensorDictDataset:
        idx = torch.as_tensor(indices, dtype=torch.long)
        masks = {n: m[idx] for n, m in self.masks.items()} if self.masks else None
        return TensorDictDataset({n: t[idx] for n, t in self.tensors.items()}, masks)


def stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(train, test)`` indices with each class split in the same proportion.

    Depends only on ``labels``, ``test_fraction`` and ``seed`` (NumPy's PCG64 stream per class), so
    a split never changes between runs or machines; pass equal labels for a plain random split.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    labels = np.asarray(labels).reshape(len(labels), -1)[:, 0]
    test: list[np.ndarray] = []
    for i, cls in enumerate(np.unique(labels)):
        members = np.flatnonzero(labels == cls)
        rng = np.random.default_rng([seed, i])
        n_test = int(round(len(members) * test_fraction))
        test.append(rng.permutation(members)[:n_test])
    test_idx = np.sort(np.concatenate(test)) if test else np.empty(0, dtype=np.int64)
    train_idx = np.setdiff1d(np.arange(len(labels)), test_idx)
    return train_idx, test_idx


def unknown_split(reader: str, split: str, splits: tuple[str, ...]) -> DataError:
    return DataError(
        f"data set {reader!r} has no split {split!r}",
        hint=f"use one of: {', '.join(splits)} (data.train_split / data.eval_split)",
    )


class PackedStrings:
    """An immutable list of strings stored as one UTF-8 buffer plus offsets.

    Millions of Python ``str`` objects in a data set are copied page by page into every forked
    DataLoader worker as their reference counts change; two NumPy arrays are shared for good.
    """

    def __init__(self, strings: Sequence[str]) -> None:
        encoded = [s.encode("utf-8") for s in strings]
        self._offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=self._offsets[1:])
        self._buffer = np.frombuffer(b"".join(encoded), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, index: int) -> str:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        index %= len(self)
        start, end = self._offsets[index], self._offsets[index + 1]
        return self._buffer[start:end].tobytes().decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(len(self)))


class SplitsReader(DatasetReader):
    """Base of readers that hold their splits in ``_splits`` (name → data set), and, unless a
    subclass computes them, their modalities in ``_modalities`` and target in ``_target``."""

    reader_name: ClassVar[str] = ""
    _splits: dict[str, Dataset]
    _modalities: dict[str, Modality]
    _target: Target | None = None

    @property
    def modalities(self) -> dict[str, Modality]:
        return dict(self._modalities)

    @property
    def target(self) -> Target | None:
        return self._target

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self._splits)

    def load(self, split: str) -> Dataset:
        if split not in self._splits:
            raise unknown_split(self.reader_name, split, self.splits)
        return self._splits[split]


class TrainTestReader(DatasetReader):
    """Base of in-memory readers with a fixed train/test split of one ``TensorDictDataset``.

    Subclasses set ``reader_name`` and fill ``_all``, ``train_indices`` and ``test_indices``.
    """

    reader_name: ClassVar[str] = ""
    _all: TensorDictDataset
    train_indices: np.ndarray
    test_indices: np.ndarray

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", "test")

    def load(self, split: str) -> Dataset:
        if split == "train":
            return self._all.subset(self.train_indices)
        if split == "test":
            return self._all.subset(self.test_indices)
        raise unknown_split(self.reader_name, split, self.splits)

    def labels(self, split: str) -> np.ndarray | None:
        """Class indices of ``split``, when the samples carry a ``target`` tensor."""
        target = self._all.tensors.get("target")
        if target is None or self.target is None:
            return None
        if split not in self.splits:
            raise unknown_split(self.reader_name, split, self.splits)
        idx = self.train_indices if split == "train" else self.test_indices
        return target[torch.as_tensor(idx, dtype=torch.long)].numpy()

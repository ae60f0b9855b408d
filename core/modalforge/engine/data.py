"""DataLoaders whose order depends only on (seed, epoch), so a resumed run sees the same batches."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler

from modalforge.errors import DataError

_MIX = 6364136223846793005  # odd 64-bit multiplier: distinct (seed, epoch) → distinct streams


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * _MIX + epoch + 1) % (2**63)


class EpochSampler(Sampler[int]):
    """A permutation per epoch from ``(seed, epoch)`` (or identity), optionally skipping a prefix.

    ``set_epoch(e, start=k)`` yields the epoch's order from position ``k`` on: a run resumed in
    the middle of an epoch continues with exactly the samples it had not seen.
    """

    def __init__(self, size: int, *, shuffle: bool, seed: int) -> None:
        self.size = size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.size))
        g = torch.Generator().manual_seed(_epoch_seed(self.seed, self.epoch))
        return torch.randperm(self.size, generator=g).tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.order()[self.start :])

    def __len__(self) -> int:
        return max(0, self.size - self.start)


class EpochLoader:
    """A DataLoader over an :class:`EpochSampler`; worker seeds also derive from (seed, epoch)."""

    def __init__(
        self,
        dataset: Dataset,
        *,
        batch_size: int,
        shuffle: bool,
        seed: int,
        num_workers: int,
        drop_last: bool,
        pin_memory: bool,
        field: str,
    ) -> None:
        if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__len__"):
            raise DataError(
                f"{field}: the data set split is not indexable (an IterableDataset)",
                hint="the engine needs a map-style Dataset with __len__ and "
                "__getitem__ so it can shuffle and resume reproducibly",
            )
        size = len(dataset)
        if size == 0:
            raise DataError(
                f"{field}: the data set split is empty",
                hint="check the data set's path and split names",
            )
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = EpochSampler(size, shuffle=shuffle, seed=seed)
        self._generator = torch.Generator()
        self.loader = DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=self.sampler,
            num_workers=num_workers,
            drop_last=drop_last,
            pin_memory=pin_memory,
            generator=self._generator,
        )
        self.batches_per_epoch = len(self.loader)
        if self.batches_per_epoch == 0:
            raise DataError(
                f"{field}: {size} samples make no full batch of {batch_size} with "
                "data.drop_last=true",
                hint="lower data.batch_size or set data.drop_last=false",
            )

    def epoch(self, epoch: int, skip_batches: int = 0) -> DataLoader:
        """The loader for ``epoch``, starting after ``skip_batches`` batches."""
        self.sampler.set_epoch(epoch, start=skip_batches * self.batch_size)
        self._generator.manual_seed(_epoch_seed(self.sampler.seed, epoch) ^ 0x5DEECE66D)
        return self.loader


def batch_size_of(batch: Any) -> int:
    """Number of samples in a collated batch (its target's, else its first tensor's length)."""
    if isinstance(batch, Mapping):
        if "target" in batch:
            return batch_size_of(batch["target"])
        for value in batch.values():
            n = batch_size_of(value)
            if n:
                return n
        return 0
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim else 1
    if isinstance(batch, (list, tuple)):
        return len(batch)
    return 0

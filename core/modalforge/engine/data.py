"""DataLoaders whose order depends only on (seed, epoch), so a resumed run sees the same batches."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler, default_collate

from modalforge.data.cache import fill_caches
from modalforge.data.transforms import plain_sample
from modalforge.errors import DataError

_MIX = 6364136223846793005  # odd 64-bit multiplier: distinct (seed, epoch) → distinct streams
#: per-modality batching functions (modality name → list of samples → batch), from the encoders
Collates = Mapping[str, Callable[[list[Any]], Any]]


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * _MIX + epoch + 1) % (2**63)


class EpochSampler(Sampler[int]):
    """A permutation per epoch from ``(seed, epoch)`` (or identity), optionally skipping a prefix.

    ``set_epoch(e, start=k)`` yields the epoch's order from position ``k`` on: a run resumed in
    the middle of an epoch continues with exactly the samples it had not seen.

    With ``world_size > 1`` process ``rank`` takes the strided slice ``order[rank::world_size]``
    of the epoch's order cut to a multiple of ``world_size`` (the last ``size % world_size``
    samples of the permutation sit the epoch out), so every process gets the same count and
    micro-batch ``k`` of all processes together is batch ``k`` of a single process with a
    ``world_size`` times larger batch. ``start`` counts this process's samples.
    """

    def __init__(
        self, size: int, *, shuffle: bool, seed: int, rank: int = 0, world_size: int = 1
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.size = size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start = 0
        self.drop_tail = 0  # samples at the end of each epoch's order that sit the epoch out

    @property
    def per_rank(self) -> int:
        """Samples this process sees per epoch."""
        return self.size // self.world_size - self.drop_tail

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def order(self) -> list[int]:
        """This process's order for the current epoch (from position 0)."""
        if not self.shuffle:
            order = list(range(self.size))
        else:
            g = torch.Generator().manual_seed(_epoch_seed(self.seed, self.epoch))
            order = torch.randperm(self.size, generator=g).tolist()
        if self.world_size > 1:
            share = self.size // self.world_size
            order = order[: share * self.world_size][self.rank :: self.world_size]
        return order[: self.per_rank]

    def __iter__(self) -> Iterator[int]:
        return iter(self.order()[self.start :])

    def __len__(self) -> int:
        return max(0, self.per_rank - self.start)


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
        rank: int = 0,
        world_size: int = 1,
        drop_lone_last: bool = False,
        collates: Collates | None = None,
    ) -> None:
        """``drop_lone_last``: a last batch of one sample (per process) is dropped, because the
        model has batch-norm layers, which cannot train on one sample (warned once)."""
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
        if size < world_size:
            raise DataError(
                f"{field}: {size} samples cannot be shared by {world_size} processes",
                hint="use more data or fewer processes (torchrun --nproc_per_node)",
            )
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.rank = rank
        self.sampler = EpochSampler(
            size, shuffle=shuffle, seed=seed, rank=rank, world_size=world_size
        )
        if drop_lone_last and not drop_last and self.sampler.per_rank % batch_size == 1:
            self.sampler.drop_tail = 1
            per = "per process " if world_size > 1 else ""
            warnings.warn(
                f"{field}: the model has batch-norm layers, which cannot train on a batch of one "
                f"sample, and {size // world_size} samples {per}in batches of {batch_size} leave "
                "one over: the last sample of each epoch's (shuffled) order sits that epoch out "
                "(set data.drop_last=true, or a data.batch_size that leaves 0 or 2+ over, to "
                "silence this)",
                stacklevel=3,
            )
        if num_workers > 0:  # workers inherit a filled memory cache instead of each filling one
            fill_caches(dataset)
        self._generator = torch.Generator()
        self.loader = SkippingDataLoader(
            dataset,
            field=field,
            collates=collates,
            batch_size=batch_size,
            sampler=self.sampler,
            num_workers=num_workers,
            drop_last=drop_last,
            pin_memory=pin_memory,
            generator=self._generator,
        )
        self.batches_per_epoch = len(self.loader)
        if self.batches_per_epoch == 0:
            if self.sampler.drop_tail:
                raise DataError(
                    f"{field}: one sample per process cannot train a model with batch-norm "
                    "layers (they need a batch of two or more)",
                    hint="use more data or fewer processes",
                )
            raise DataError(
                f"{field}: {self.sampler.per_rank} samples per process make no full batch of "
                f"{batch_size} with data.drop_last=true",
                hint="lower data.batch_size or set data.drop_last=false",
            )

    def epoch(self, epoch: int, skip_batches: int = 0) -> DataLoader:
        """The loader for ``epoch``, starting after ``skip_batches`` batches."""
        self.sampler.set_epoch(epoch, start=skip_batches * self.batch_size)
        # Worker seeds differ per process (and equal the single-process ones on process 0).
        seed = _epoch_seed(self.sampler.seed, epoch) ^ 0x5DEECE66D ^ (self.rank * _MIX)
        self._generator.manual_seed(seed % 2**63)
        return self.loader

    @property
    def skipped(self) -> int:
        """Unreadable samples dropped so far, over all passes (see :class:`SkippingDataLoader`)."""
        return self.loader.skipped


def loader_workers(setting: int | str, device: Any, world_size: int = 1) -> int:  # noqa: ANN401
    """``data.num_workers`` for ``device``: a number as given; ``auto`` is 0 on the CPU, where
    the training itself uses the cores (measured: no faster with 2 workers on 2 cores), else up
    to 4 per process, leaving each process one core (the image-folder loader alone decodes 1.4×
    faster with 2 workers than with none: ``benchmarks/loader_workers.py``)."""
    if setting != "auto":
        return int(setting)
    if getattr(device, "type", str(device)) == "cpu":
        return 0
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(0, min(4, (cores or 1) // max(1, world_size) - 1))


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


def collate_samples(samples: list[Any], collates: Collates | None = None) -> Any:  # noqa: ANN401
    """``default_collate(samples)``, except that the modalities in ``collates`` (dict samples)
    are batched by their encoder's own collate (see :meth:`Encoder.collate`), e.g. padding
    captions to the longest in the batch. Tensor subclasses that carry metadata (MONAI's
    ``MetaTensor``) are batched as plain tensors (:func:`plain_sample`)."""
    samples = [plain_sample(s) for s in samples]
    if not collates or not samples or not isinstance(samples[0], Mapping):
        return default_collate(samples)
    own = [k for k in samples[0] if k in collates]
    if not own:
        return default_collate(samples)
    rest = default_collate([{k: v for k, v in s.items() if k not in collates} for s in samples])
    batched = {k: collates[k]([s[k] for s in samples]) for k in own}
    return {k: batched[k] if k in batched else rest[k] for k in samples[0]}


def collate_dropping_none(samples: list[Any], collates: Collates | None = None) -> tuple[Any, int]:
    """``(collate_samples(samples without None), number of None samples dropped)``.

    Readers return ``None`` for a sample they could not read and chose to skip (a corrupt image);
    the count travels with the batch so the loader can report it from worker processes too.
    """
    kept = [s for s in samples if s is not None]
    return (collate_samples(kept, collates) if kept else None), len(samples) - len(kept)


class SkippingDataLoader(DataLoader):
    """A DataLoader that drops the ``None`` samples of skipping readers and counts them.

    ``skipped`` counts all dropped samples since construction; after a pass over the data that
    dropped any, a warning gives the number (again only when a later pass drops a different
    number); the reader's own warning names the first bad file.
    A batch whose samples were all dropped raises :class:`DataError`: the training loop counts
    batches (resume, gradient accumulation, processes in step), so it cannot silently vanish.
    """

    def __init__(
        self, dataset: Dataset, *, field: str, collates: Collates | None = None, **kwargs: Any
    ) -> None:
        collate = partial(collate_dropping_none, collates=dict(collates or {}))  # picklable
        super().__init__(dataset, collate_fn=collate, **kwargs)
        self.field = field
        self.skipped = 0
        self._warned = 0

    def __iter__(self) -> Iterator[Any]:
        dropped = 0
        try:
            for batch, n in super().__iter__():
                dropped += n
                self.skipped += n
                if batch is None:
                    raise DataError(
                        f"{self.field}: all {n} samples of a batch were unreadable "
                        f"({self.skipped} skipped so far); the warnings above name a file",
                        hint="check the data paths and files; a batch needs at least one "
                        "readable sample (a larger data.batch_size helps if only a few are bad)",
                    )
                yield batch
        finally:
            if dropped and dropped != self._warned:
                self._warned = dropped
                warnings.warn(
                    f"{self.field}: skipped {dropped} unreadable samples in this pass over the "
                    f"data ({self.skipped} in all); the first warning about them names a file",
                    stacklevel=2,
                )

"""Batch-norm layers cannot train on a batch of one sample ("Expected more than 1 value per
channel when training"): what the engine does about it.

- A last batch of one sample per process is dropped from each epoch (see ``EpochLoader``'s
  ``drop_lone_last``), so ``batches_per_epoch`` stays fixed for resume and accumulation.
- A batch left with one sample because a reader skipped unreadable samples is skipped in a single
  process (no forward, no optimizer step unless other micro-batches of its accumulation group
  contributed). Under ``torchrun`` every process must take part in each step, so there the lone
  sample trains with the batch-norm layers in eval mode (running statistics) instead.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from modalforge.errors import SpecError


def training_batch_norms(*modules: nn.Module | None) -> list[_BatchNorm]:
    """The batch-norm layers of ``modules`` that are in training mode (call after ``.train()``)."""
    return [
        m
        for module in modules
        if module is not None
        for m in module.modules()
        if isinstance(m, _BatchNorm) and m.training
    ]


def check_batch_size(batch_size: int, norms: list[_BatchNorm]) -> None:
    if norms and batch_size < 2:
        raise SpecError(
            "data.batch_size",
            f"1 sample per batch cannot train a model with batch-norm layers "
            f"({type(norms[0]).__name__}: each needs two or more samples per batch)",
            hint="set data.batch_size to 2 or more",
        )


@contextlib.contextmanager
def eval_mode(norms: list[_BatchNorm]) -> Iterator[None]:
    """The layers in eval mode (running statistics) for the duration."""
    for m in norms:
        m.train(False)
    try:
        yield
    finally:
        for m in norms:
            m.train(True)


def warn_skipped(split: str, count: int, trainer: Any) -> None:  # noqa: ANN401 - a Trainer
    """One warning for the ``count`` lone batches the epoch just finished skipped."""
    warnings.warn(
        f"data.train_split ({split!r}): {count} batch(es) of epoch {trainer.epoch + 1} kept one "
        "sample after unreadable samples were skipped, and batch-norm layers cannot train on "
        f"one: skipped, without an optimizer step ({trainer._lone_batches} in all)",
        stacklevel=3,
    )

"""What a checkpoint's trainer record says about continuing from it in this run."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def resume_notes(
    extra: Mapping[str, Any],
    checkpoint: Path,
    *,
    world_size: int,
    batches_per_epoch: int,
    scheduler: str,
) -> tuple[int, list[str]]:
    """``(batches of the current epoch to skip, warnings)``.

    A run that changed its number of processes or its data continues at the start of the epoch
    (its position inside the epoch no longer means the same samples); another schedule than the
    one the checkpoint was trained with is allowed, and said.
    """
    skip = int(extra.get("batch_in_epoch", 0))
    notes = []
    world = int(extra.get("world_size", 1))
    changed = None
    if world != world_size:
        changed = f"{checkpoint} was written by {world} process(es), this run has {world_size}"
    elif extra.get("batches_per_epoch") != batches_per_epoch:
        changed = (
            f"the training data changed since {checkpoint} was written "
            f"({extra.get('batches_per_epoch')} → {batches_per_epoch} batches per epoch)"
        )
    if skip and changed:
        notes.append(f"{changed}; resuming at the start of the epoch")
        skip = 0
    written = extra.get("scheduler")
    if written and written != scheduler:
        notes.append(
            f"{checkpoint} was trained with schedule {written!r}; this run continues with "
            f"{scheduler!r} (train.scheduler)"
        )
    return skip, notes

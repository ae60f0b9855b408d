"""``train`` and ``evaluate``: one call each, a :class:`~modalforge.engine.trainer.Trainer` built,
used and closed (its process group ended) around it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from modalforge.engine.results import TrainResult
from modalforge.engine.trainer import Trainer
from modalforge.pipeline import Pipeline


def train(pipeline: Pipeline, out_dir: str | Path, resume: str | Path | None = None) -> TrainResult:
    """Train ``pipeline`` into ``out_dir`` (continuing from checkpoint ``resume`` if given)."""
    trainer = Trainer(pipeline, out_dir)
    try:
        return trainer.fit(resume=resume)
    finally:
        trainer.close()


def evaluate(
    pipeline: Pipeline,
    checkpoint: str | Path,
    split: str | None = None,
    missing: Sequence[str] = (),
) -> dict[str, float]:
    """Load weights from ``checkpoint`` (run, checkpoints or step folder) and evaluate ``split``,
    with the ``missing`` modalities withheld from every sample (see :meth:`Trainer.evaluate`)."""
    trainer = Trainer(pipeline, out_dir=None)
    try:
        trainer.load_weights(checkpoint)
        return trainer.evaluate(split, missing=missing)
    finally:
        trainer.close()

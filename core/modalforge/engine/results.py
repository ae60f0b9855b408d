"""What a run leaves behind besides checkpoints: the result record and the resolved spec."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from modalforge.engine.checkpoint_files import CHECKPOINTS_DIR
from modalforge.errors import ModalforgeError
from modalforge.io import write_json, write_text

if TYPE_CHECKING:
    from modalforge.spec import PipelineSpec

RESULTS_FILE = "results.json"
SPEC_FILE = "spec.yaml"


class OutputExistsError(ModalforgeError):
    """The output folder holds checkpoints of an earlier run and no resume was asked for."""


@dataclass
class TrainResult:
    """What :meth:`~modalforge.engine.Trainer.fit` returns (also in ``<out>/results.json``)."""

    metrics: dict[str, float]
    steps: int
    epochs: int
    train_seconds: float
    checkpoint: Path | None
    best_checkpoint: Path | None = None
    best: dict[str, Any] | None = field(default=None, repr=False)
    # {"by", "reason", "step", "epoch"} when a callback ended training early (early_stopping)
    stopped: dict[str, Any] | None = None
    # batches skipped because skipped samples left one for batch-norm layers
    skipped_batches: int = 0


def refuse_to_overwrite(out_dir: Path) -> None:
    """Starting afresh in a folder with checkpoints would rotate them away: refuse."""
    ckpts = out_dir / CHECKPOINTS_DIR
    if ckpts.is_dir() and any(p.name.startswith("step_") for p in ckpts.iterdir()):
        raise OutputExistsError(
            f"output folder {out_dir} already holds checkpoints of an earlier run",
            hint=f"resume it with `--resume {out_dir}`, or choose another output_dir "
            "(or delete that folder)",
        )


def write_spec(out_dir: Path, spec: PipelineSpec) -> None:
    """The resolved spec (defaults filled in), so the run can be reproduced or resumed."""
    text = yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)
    write_text(out_dir / SPEC_FILE, text)


def write_results(out_dir: Path, spec_name: str, result: TrainResult) -> None:
    write_json(
        out_dir / RESULTS_FILE,
        {
            "spec": spec_name,
            "metrics": result.metrics,
            "steps": result.steps,
            "epochs": result.epochs,
            "train_seconds": result.train_seconds,
            "checkpoint": str(result.checkpoint) if result.checkpoint else None,
            "best_checkpoint": str(result.best_checkpoint) if result.best_checkpoint else None,
            "best": result.best,
            "stopped": result.stopped,
            "skipped_batches": result.skipped_batches,
        },
    )

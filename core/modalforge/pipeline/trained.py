"""A trained pipeline ready for inference: built from its spec, weights from a checkpoint.

Used by every command and component that runs a model someone trained (``zeroshot``,
``retrieve``, ``embed``, ``generate`` and the CLIP reranker). The checkpoint path is checked
before anything is built; the model runs on ``train.device`` in eval mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from modalforge.pipeline.build import Pipeline, build_pipeline
from modalforge.spec import PipelineSpec, load_spec


@dataclass
class TrainedPipeline:
    """A pipeline whose model holds a checkpoint's weights, in eval mode on ``device``;
    ``dataset_state`` is what the data set reader stored with them (its ``state_dict()``)."""

    pipeline: Pipeline
    model: nn.Module
    device: torch.device
    precision: Any  # modalforge.engine.runtime.Precision
    checkpoint: Path
    dataset_state: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> PipelineSpec:
        return self.pipeline.spec


def load_trained(
    spec: str | Path | PipelineSpec,
    checkpoint: str | Path,
    overrides: Sequence[str] = (),
    *,
    registry: Any = None,
    device: str | None = None,
) -> TrainedPipeline:
    """Spec (+ ``a.b=c`` overrides) → pipeline; weights from ``checkpoint`` (a run folder, its
    ``checkpoints`` folder or a step folder). ``device`` overrides ``train.device``."""
    from modalforge.engine import load_checkpoint, resolve_checkpoint, select_device
    from modalforge.engine.runtime import Precision
    from modalforge.plugin import get_registry

    resolve_checkpoint(Path(checkpoint))  # a wrong path fails before anything is built
    if not isinstance(spec, PipelineSpec):
        spec = load_spec(spec, list(overrides))
    pipeline = build_pipeline(spec, registry or get_registry())
    where = select_device(device or spec.train.device)
    precision = Precision(spec.train.precision, where)
    model = pipeline.model.to(where).eval()
    state = load_checkpoint(checkpoint, model=model)
    trainer = state.get("trainer") or {}
    pipeline.load_transform_state(trainer.get("transforms"))
    return TrainedPipeline(
        pipeline, model, where, precision, Path(state["path"]), dict(trainer.get("dataset") or {})
    )

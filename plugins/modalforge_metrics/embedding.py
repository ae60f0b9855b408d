"""Shared parts of the embedding metrics: reading ``embed.<modality>`` outputs and labels."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor, nn

from modalforge.contracts import TARGET_KEY
from modalforge.errors import DataError, SpecError
from modalforge.evaluation import is_contrastive, unwrap_model


def read_output(outputs: Mapping[str, Tensor], key: str, metric: str, param: str) -> Tensor:
    """``outputs[key]`` detached, or a :class:`SpecError` naming what the model gives instead."""
    if key not in outputs:
        raise SpecError(
            "metrics",
            f"metric {metric!r} reads model output {key!r}, but the model gives "
            f"{', '.join(map(repr, outputs)) or 'nothing'}",
            hint=f"use a contrastive model (model.type: contrastive), or set the metric's {param}",
        )
    return outputs[key].detach()


def read_labels(batch: Mapping[str, Tensor], metric: str) -> Tensor:
    """Single class labels ``(B,)`` from the batch's target."""
    if TARGET_KEY not in batch:
        raise DataError(
            f"metric {metric!r} needs labelled data ({TARGET_KEY!r} in batches)",
            hint="use a data set with a class target, or drop the metric",
        )
    y = batch[TARGET_KEY].detach()
    if y.ndim > 1 and y.shape[1:].numel() != 1:
        raise DataError(
            f"metric {metric!r} needs one class label per sample, got targets of shape "
            f"{tuple(y.shape)}",
            hint="use it with a multiclass target",
        )
    return y.reshape(-1).long()


def read_label_matrix(batch: Mapping[str, Tensor], metric: str) -> Tensor:
    """Multi-label 0/1 targets ``(B, L)`` from the batch's target."""
    if TARGET_KEY not in batch:
        raise DataError(
            f"metric {metric!r} needs labelled data ({TARGET_KEY!r} in batches)",
            hint="use a data set with a multilabel target, or drop the metric",
        )
    y = batch[TARGET_KEY].detach()
    if y.ndim != 2:
        raise DataError(
            f"metric {metric!r} needs one row of labels per sample, got targets of shape "
            f"{tuple(y.shape)}",
            hint="use it with a multilabel target",
        )
    return y


def contrastive_parts(model: nn.Module, modalities: tuple[str, ...], metric: str) -> nn.Module:
    """The model if it can ``encode(modality, x)`` each of ``modalities``, else a SpecError."""
    model = unwrap_model(model)
    if not is_contrastive(model):
        raise SpecError(
            "metrics",
            f"metric {metric!r} needs a model that embeds each modality on its own "
            f"(a contrastive model), got {type(model).__name__}",
            hint="set `model.type: contrastive`, or drop the metric",
        )
    encoders = model.encoders
    missing = [m for m in modalities if m not in encoders]
    if missing:
        raise SpecError(
            "metrics",
            f"metric {metric!r} needs encoders for {', '.join(map(repr, missing))}, but the model "
            f"has {', '.join(map(repr, encoders))}",
            hint="set the metric's image_modality / text_modality to the model's modality names",
        )
    return model

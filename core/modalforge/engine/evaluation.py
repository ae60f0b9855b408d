"""One evaluation pass: mean loss (weighted by batch size) and every metric's numbers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from modalforge.contracts import Loss, Metric
from modalforge.engine.data import batch_size_of
from modalforge.engine.logging import Progress
from modalforge.engine.runtime import Precision, prefetch_to_device


def float32_outputs(outputs: Any) -> Any:
    """Low-precision floating outputs (autocast) cast to float32, so metrics see full precision."""
    if isinstance(outputs, Tensor):
        return outputs.float() if outputs.is_floating_point() else outputs
    if isinstance(outputs, Mapping):
        return {k: float32_outputs(v) for k, v in outputs.items()}
    return outputs


@torch.no_grad()
def run_evaluation(
    model: nn.Module,
    batches: Iterable[Any],
    *,
    precision: Precision,
    loss: Loss | None = None,
    metrics: Mapping[str, Metric] | None = None,
    progress: bool = False,
    total: int | None = None,
    desc: str = "eval",
) -> dict[str, float]:
    """``{"loss": mean, "loss_<part>": mean, <metric names>: value}`` over ``batches``.

    The model is put in eval mode for the pass and its previous mode restored afterwards. Sums stay
    on the device; the only host sync is at the end.
    """
    metrics = dict(metrics or {})
    if loss is None and not metrics:
        return {}
    was_training = model.training
    model.eval()
    if loss is not None:
        loss.eval()
    for metric in metrics.values():
        metric.reset()
        with torch.no_grad():
            metric.prepare(model)
    sums: dict[str, Tensor] = {}
    count = 0
    bar = Progress(
        prefetch_to_device(batches, precision.device), total=total, desc=desc, enabled=progress
    )
    try:
        for batch in bar:
            with precision.context():
                outputs = model(batch)
                loss_out = loss(outputs, batch) if loss is not None else None
            n = batch_size_of(batch)
            count += n
            if loss_out is not None:
                named = {"loss": loss_out.total}
                named.update({f"loss_{k}": v for k, v in loss_out.parts.items()})
                for k, v in named.items():
                    v = v.detach().float() * n
                    sums[k] = sums[k] + v if k in sums else v
            if metrics:
                outs = float32_outputs(outputs)
                for metric in metrics.values():
                    metric.update(outs, batch)
    finally:
        bar.close()
        model.train(was_training)
        if loss is not None:
            loss.train(was_training)
    results: dict[str, float] = {}
    if sums:
        keys = list(sums)
        values = torch.stack([sums[k] for k in keys]).div(max(count, 1)).tolist()
        results.update(zip(keys, values, strict=True))
    for metric in metrics.values():
        results.update({k: float(v) for k, v in metric.compute().items()})
    return results

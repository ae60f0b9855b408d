"""Robustness of a supervised model to a noisy or missing modality.

:func:`corrupt_batch` perturbs one modality of a batch; :func:`evaluate_robustness` runs a model
over a loader once per modality and corruption and reports a metric for each, plus a one-number
summary per modality (:func:`normalized_auc` of the metric-vs-noise curve).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from modalforge.contracts import MASKS_KEY, TARGET_KEY
from modalforge.errors import DataError, ModalforgeError
from modalforge.evaluation.encode import model_device, unwrap_model

DEFAULT_NOISE_LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)

MetricFn = Callable[[Tensor, Tensor], float]


def corrupt_batch(
    batch: Mapping[str, Any],
    modality: str,
    *,
    noise: float = 0.0,
    missing: bool = False,
    generator: torch.Generator | None = None,
) -> dict[str, Any]:
    """A copy of ``batch`` with ``modality`` noised or marked missing; the input is not changed.

    ``noise``: adds Gaussian noise of std ``noise × s`` where ``s`` is the standard deviation of
    the modality's whole batch tensor (all its elements), or 1 if that is 0 or undefined. Float
    tensors only. The noise is drawn on ``generator``'s device (CPU by default) and then moved,
    so it is the same on any device. ``noise=0`` leaves the tensor as it is.

    ``missing``: the modality's mask is False for every sample and its tensor is zeroed (any
    dtype), so a model that ignores masks still loses the information.
    """
    if modality not in batch:
        raise KeyError(f"batch has no modality {modality!r} (keys: {', '.join(batch)})")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    if missing and noise > 0:
        raise ValueError("give either noise or missing=True, not both")
    x = batch[modality]
    out = dict(batch)
    if missing:
        out[modality] = torch.zeros_like(x)
        masks = dict(batch.get(MASKS_KEY) or {})
        masks[modality] = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        out[MASKS_KEY] = masks
        return out
    if not (isinstance(x, Tensor) and x.is_floating_point()):
        kind = x.dtype if isinstance(x, Tensor) else type(x).__name__
        raise DataError(
            f"modality {modality!r} holds {kind} values; noise applies to float tensors only",
            hint="evaluate this modality as missing only (e.g. token ids cannot be noised)",
        )
    if noise == 0:
        return out
    scale = x.detach().float().std() if x.numel() > 1 else torch.tensor(0.0)
    scale = float(scale) if torch.isfinite(scale) and scale > 0 else 1.0
    gen_device = generator.device if generator is not None else torch.device("cpu")
    eps = torch.randn(x.shape, generator=generator, device=gen_device, dtype=torch.float32)
    out[modality] = x + (noise * scale * eps).to(device=x.device, dtype=x.dtype)
    return out


def withhold(batch: Mapping[str, Any], modalities: Sequence[str]) -> dict[str, Any]:
    """``batch`` with each of ``modalities`` marked missing (see :func:`corrupt_batch`)."""
    out = dict(batch)
    for modality in modalities:
        out = corrupt_batch(out, modality, missing=True)
    return out


def check_withheld(missing: Sequence[str], modalities: Sequence[str]) -> tuple[str, ...]:
    """``missing`` as a tuple, if each names one of ``modalities`` and some are left."""
    missing = tuple(missing)
    unknown = [m for m in missing if m not in modalities]
    if unknown or (missing and set(missing) >= set(modalities)):
        problem = (
            f"names {', '.join(unknown)}, not a modality of the model"
            if unknown
            else "withholds every modality: nothing is left to predict from"
        )
        raise ModalforgeError(
            f"evaluation with missing modalities {problem}",
            hint=f"name some of the model's modalities: {', '.join(modalities) or 'none'}",
        )
    return missing


def normalized_auc(levels: Sequence[float], values: Sequence[float]) -> float:
    """Area under ``values`` over ``levels`` (trapezoid rule, levels sorted), divided by the
    level range ``max - min``: the curve's mean value over the noise range, in the metric's units.

    A single level gives its value. Levels must be distinct.
    """
    if len(levels) != len(values) or not levels:
        raise ValueError("need as many values as levels, and at least one")
    pairs = sorted(zip(map(float, levels), map(float, values), strict=True))
    xs = [x for x, _ in pairs]
    if len(set(xs)) != len(xs):
        raise ValueError(f"noise levels must be distinct, got {list(levels)}")
    if len(pairs) == 1:
        return pairs[0][1]
    area = sum(
        (x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in zip(pairs[:-1], pairs[1:], strict=True)
    )
    return area / (xs[-1] - xs[0])


def evaluate_robustness(
    model: nn.Module,
    loader: Iterable[Mapping[str, Any]],
    metric_fn: MetricFn,
    modalities: Sequence[str],
    *,
    noise_levels: Sequence[float] = DEFAULT_NOISE_LEVELS,
    device: torch.device | str | None = None,
    seed: int = 0,
    output_key: str | None = None,
) -> dict[str, Any]:
    """The metric with each modality noised at each level, and with each modality missing.

    ``metric_fn(predictions, targets) -> float`` gets the model's ``output_key`` output (default:
    the head's ``output_key``, e.g. ``"logits"``) and ``batch["target"]``, each concatenated over
    the whole loader, on CPU. ``loader`` is iterated once per condition, so it must give the same
    batches each time (no shuffling). The model runs in eval mode without gradients (its mode is
    restored afterwards) on ``device`` (default: where its parameters are).

    Each condition draws its noise from a fresh CPU generator seeded with ``seed`` (the same
    draws for every level and modality), so results are deterministic given ``seed``.

    Returns ``{"clean": m, "noise": {mod: {level: m}}, "missing": {mod: m},
    "auc": {mod: normalized_auc(levels, noise curve)}}``.
    """
    levels = [float(v) for v in noise_levels]
    if not levels:
        raise ValueError("noise_levels is empty")
    device = torch.device(device) if device is not None else model_device(model)
    if output_key is None:
        output_key = unwrap_model(model).head.output_key

    def run(corrupt: Callable[[Mapping[str, Any], torch.Generator], dict[str, Any]]) -> float:
        generator = torch.Generator().manual_seed(seed)
        preds, targets = [], []
        for batch in loader:
            batch = _to_device(corrupt(batch, generator), device)
            preds.append(model(batch)[output_key].detach().cpu())
            targets.append(batch[TARGET_KEY].detach().cpu())
        return float(metric_fn(torch.cat(preds), torch.cat(targets)))

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            result: dict[str, Any] = {"clean": run(lambda b, g: dict(b))}
            result["noise"] = {
                mod: {
                    level: run(
                        lambda b, g, mod=mod, level=level: corrupt_batch(
                            b, mod, noise=level, generator=g
                        )
                    )
                    for level in levels
                }
                for mod in modalities
            }
            result["missing"] = {
                mod: run(lambda b, g, mod=mod: corrupt_batch(b, mod, missing=True))
                for mod in modalities
            }
    finally:
        model.train(was_training)
    result["auc"] = {
        mod: normalized_auc(levels, [curve[v] for v in levels])
        for mod, curve in result["noise"].items()
    }
    return result


def _to_device(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, Tensor):
        return obj.to(device)
    if isinstance(obj, Mapping):
        return {k: _to_device(v, device) for k, v in obj.items()}
    return obj

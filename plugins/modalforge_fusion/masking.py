"""Helpers shared by the fusions: pooling token inputs and applying presence masks."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from modalforge.contracts import FeatureSpec


def pooled_inputs(in_features: Mapping[str, FeatureSpec]) -> dict[str, FeatureSpec]:
    """The fusion's declared inputs: pooled vectors (``tokens=False``) of each encoder's width.

    A fusion's ``in_features[m].tokens`` tells the model whether to call ``forward_tokens``; these
    fusions want pooled features even from encoders that can produce tokens.
    """
    return {m: FeatureSpec(f.dim) for m, f in in_features.items()}


def pooled(x: Tensor) -> Tensor:
    """``(B, D)`` as is; token sequences ``(B, T, D)`` averaged over ``T``."""
    return x.mean(dim=1) if x.ndim == 3 else x


def presence(masks: Mapping[str, Tensor] | None, name: str, like: Tensor) -> Tensor | None:
    """The ``(B, 1)`` presence mask of ``name`` in ``like``'s dtype, or ``None`` if all present."""
    if masks is None or name not in masks:
        return None
    return masks[name].reshape(-1, 1).to(device=like.device, dtype=like.dtype)

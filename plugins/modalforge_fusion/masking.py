"""Helpers shared by the fusions: pooling token inputs and applying presence masks."""

from __future__ import annotations

from collections.abc import Mapping

import torch
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


def keep_or_ones(masks: Mapping[str, Tensor] | None, name: str, like: Tensor) -> Tensor:
    """Like :func:`presence`, but all ones (``(B, 1)``) when every sample has ``name``."""
    keep = presence(masks, name, like)
    return torch.ones_like(like[:, :1]) if keep is None else keep


def with_one(x: Tensor, keep: Tensor) -> Tensor:
    """``[x, 1]`` for a present sample and ``[0, …, 0, 1]`` for an absent one (TFN / LMF input)."""
    return torch.cat([x * keep, torch.ones_like(x[:, :1])], dim=-1)


def check_dim(name: str, value: int | None) -> None:
    """Reject a non-positive width parameter with a message naming it."""
    if value is not None and value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")

"""Small building blocks shared by the encoders in this plugin."""

from __future__ import annotations

from typing import Literal

from torch import nn

VectorNorm = Literal["layer", "batch", "none"]


def vector_norm(kind: VectorNorm, dim: int) -> nn.Module:
    """A normalisation layer for ``(B, dim)`` activations."""
    if kind == "layer":
        return nn.LayerNorm(dim)
    if kind == "batch":
        return nn.BatchNorm1d(dim)
    return nn.Identity()


def mlp(
    in_dim: int,
    hidden_dims: list[int],
    out_dim: int,
    *,
    dropout: float = 0.0,
    norm: VectorNorm = "none",
) -> nn.Sequential:
    """``Linear → norm → GELU → dropout`` per hidden width, then ``Linear`` to ``out_dim``."""
    layers: list[nn.Module] = []
    width = in_dim
    for hidden in hidden_dims:
        layers += [nn.Linear(width, hidden), vector_norm(norm, hidden), nn.GELU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = hidden
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def check_positive(name: str, values: list[int]) -> None:
    """Raise ``ValueError`` (reported by the builder as a spec error) on a non-positive width."""
    bad = [v for v in values if v <= 0]
    if bad:
        raise ValueError(f"{name} must be positive integers, got {values}")


def check_dropout(dropout: float) -> None:
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")

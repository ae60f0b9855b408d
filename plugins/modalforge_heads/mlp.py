"""The MLP every head here is built from."""

from __future__ import annotations

from torch import nn


def head_mlp(in_dim: int, hidden_dims: list[int], out_dim: int, dropout: float) -> nn.Sequential:
    """``[dropout] → Linear → GELU`` per hidden width, then ``[dropout] → Linear`` to ``out_dim``.

    Dropout before each linear layer regularises the fused representation as well as hidden ones.
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if any(h <= 0 for h in hidden_dims) or out_dim <= 0:
        raise ValueError(f"widths must be positive, got hidden_dims={hidden_dims}, out={out_dim}")
    layers: list[nn.Module] = []
    width = in_dim
    for hidden in hidden_dims:
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.Linear(width, hidden), nn.GELU()]
        width = hidden
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)

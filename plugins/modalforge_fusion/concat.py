"""``concat``: concatenate per-modality features (absent modalities zeroed), optional projection."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from modalforge.contracts import FeatureSpec, Fusion
from modalforge_fusion.masking import pooled, pooled_inputs, presence


class ConcatFusion(Fusion):
    """Late fusion by concatenation, in the order of ``in_features``.

    The output width is the sum of the encoders' widths, or ``proj_dim`` with a projection. Where a
    modality is absent (``masks[m]`` is ``False``) its slice is zero, so the result never depends
    on whatever placeholder the data held for it.
    """

    def __init__(
        self,
        in_features: Mapping[str, FeatureSpec],
        proj_dim: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(in_features)
        self.in_features = pooled_inputs(in_features)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.order = tuple(self.in_features)
        width = sum(f.dim for f in self.in_features.values())
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.proj: nn.Module = nn.Identity()
        if proj_dim is not None:
            if proj_dim <= 0:
                raise ValueError(f"proj_dim must be positive, got {proj_dim}")
            self.proj = nn.Linear(width, proj_dim)
        self._output = FeatureSpec(proj_dim or width)

    def forward(
        self, features: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        parts = []
        for name in self.order:
            x = pooled(features[name])
            keep = presence(masks, name, x)
            parts.append(x if keep is None else x * keep)
        return self.proj(self.dropout(torch.cat(parts, dim=-1)))

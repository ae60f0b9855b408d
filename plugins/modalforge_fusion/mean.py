"""``mean``: project each modality to a shared width, then average over the present ones."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from modalforge.contracts import FeatureSpec, Fusion
from modalforge_fusion.masking import pooled, pooled_inputs, presence


class MeanFusion(Fusion):
    """Average of per-modality linear projections to ``dim`` (default: the widest encoder's width).

    With masks, the average runs over present modalities only; a sample with none gives zeros.
    Unlike ``concat``, the output width does not grow with the number of modalities.
    """

    def __init__(self, in_features: Mapping[str, FeatureSpec], dim: int | None = None) -> None:
        super().__init__(in_features)
        self.in_features = pooled_inputs(in_features)
        width = dim if dim is not None else max(f.dim for f in self.in_features.values())
        if width <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        self.proj = nn.ModuleDict({m: nn.Linear(f.dim, width) for m, f in self.in_features.items()})
        self._output = FeatureSpec(width)

    def forward(
        self, features: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        total: Tensor | None = None
        count: Tensor | None = None
        for name, proj in self.proj.items():
            x = proj(pooled(features[name]))
            keep = presence(masks, name, x)
            if keep is None:
                keep = torch.ones_like(x[:, :1])
            total = x * keep if total is None else total + x * keep
            count = keep if count is None else count + keep
        assert total is not None and count is not None
        return total / count.clamp_min(1.0)

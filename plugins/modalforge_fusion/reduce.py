"""``sum`` and ``max``: project each modality to a shared width, then reduce over present ones."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from modalforge.contracts import FeatureSpec, Fusion
from modalforge_fusion.masking import check_dim, keep_or_ones, pooled, pooled_inputs


class _ProjectedReduce(Fusion):
    """Per-modality ``Linear(d_m, dim)`` (default ``dim``: the widest encoder's width)."""

    def __init__(self, in_features: Mapping[str, FeatureSpec], dim: int | None = None) -> None:
        super().__init__(in_features)
        self.in_features = pooled_inputs(in_features)
        check_dim("dim", dim)
        width = dim if dim is not None else max(f.dim for f in self.in_features.values())
        self.proj = nn.ModuleDict({m: nn.Linear(f.dim, width) for m, f in self.in_features.items()})
        self._output = FeatureSpec(width)

    def _projected(
        self, features: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None
    ) -> tuple[Tensor, Tensor]:
        """Stacked projections ``(B, N, dim)`` and presence ``(B, N, 1)``."""
        xs, keeps = [], []
        for name, proj in self.proj.items():
            x = proj(pooled(features[name]))
            xs.append(x)
            keeps.append(keep_or_ones(masks, name, x))
        return torch.stack(xs, dim=1), torch.stack(keeps, dim=1)


class SumFusion(_ProjectedReduce):
    """Sum of per-modality linear projections to ``dim``; an absent modality adds nothing.

    A sample with no modality present gives zeros.
    """

    def forward(
        self, features: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        x, keep = self._projected(features, masks)
        return (x * keep).sum(dim=1)


class MaxFusion(_ProjectedReduce):
    """Element-wise maximum of per-modality linear projections to ``dim``, over present modalities.

    Absent modalities never win the maximum; a sample with no modality present gives zeros.
    """

    def forward(
        self, features: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        x, keep = self._projected(features, masks)
        present = keep > 0
        out = x.masked_fill(~present, float("-inf")).amax(dim=1)
        return torch.where(present.any(dim=1), out, torch.zeros_like(out))

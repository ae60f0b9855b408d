"""``late``: per-modality decision branches, averaged (plainly or with learned weights)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
from torch import Tensor, nn

from modalforge.contracts import FeatureSpec, Fusion
from modalforge_fusion.masking import check_dim, keep_or_ones, pooled, pooled_inputs


class LateFusion(Fusion):
    """Weighted average of per-modality branches ``Linear → GELU → Linear`` (decision level).

    Each branch is a small per-modality head; the pipeline's (linear) head on the average equals
    the average of per-modality heads' logits, i.e. late fusion. The hidden layer is what makes
    it differ from ``mean``, whose per-modality maps are linear. ``mode="mean"`` weighs present
    modalities equally; ``mode="learned"`` uses softmax-normalised trainable weights (one per
    modality, starting equal). Absent modalities are left out and the
    weights of the present ones renormalised; a sample with none present gives zeros.
    """

    def __init__(
        self,
        in_features: Mapping[str, FeatureSpec],
        dim: int | None = None,
        mode: Literal["mean", "learned"] = "mean",
        hidden: int | None = None,
    ) -> None:
        super().__init__(in_features)
        self.in_features = pooled_inputs(in_features)
        check_dim("dim", dim)
        check_dim("hidden", hidden)
        if mode not in ("mean", "learned"):
            raise ValueError(f"mode must be 'mean' or 'learned', got {mode!r}")
        width = dim if dim is not None else max(f.dim for f in self.in_features.values())
        hid = hidden if hidden is not None else width
        self.proj = nn.ModuleDict(
            {
                m: nn.Sequential(nn.Linear(f.dim, hid), nn.GELU(), nn.Linear(hid, width))
                for m, f in self.in_features.items()
            }
        )
        self.mode = mode
        self.logits = nn.Parameter(torch.zeros(len(self.proj))) if mode == "learned" else None
        self._output = FeatureSpec(width)

    def weights(self) -> Tensor:
        """Per-modality weights ``(N,)`` before masking (sum to one)."""
        if self.logits is None:
            return torch.full((len(self.proj),), 1.0 / len(self.proj))
        return self.logits.softmax(dim=0)

    def forward(
        self, features: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        xs, keeps = [], []
        for name, proj in self.proj.items():
            x = proj(pooled(features[name]))
            xs.append(x)
            keeps.append(keep_or_ones(masks, name, x))
        x, keep = torch.stack(xs, dim=1), torch.stack(keeps, dim=1)  # (B, N, D), (B, N, 1)
        w = self.weights().to(x).reshape(1, -1, 1) * keep
        w = w / w.sum(dim=1, keepdim=True).clamp_min(1e-12)
        return (w * x).sum(dim=1)

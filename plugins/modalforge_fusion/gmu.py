"""``gmu``: gated multimodal unit (Arevalo et al., 2017), generalised to N modalities."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from modalforge.contracts import FeatureSpec, Fusion
from modalforge_fusion.masking import check_dim, keep_or_ones, pooled, pooled_inputs


class GMUFusion(Fusion):
    """``Σ_m z_m ⊙ tanh(W_m x_m)`` with per-dimension gates ``z`` computed from all inputs.

    The gates are a linear function of the concatenated inputs: a sigmoid ``z`` and ``1 − z`` for
    two modalities (the paper's form), a softmax over modalities for more. An absent modality's
    input is zeroed in the gate input and its gate is set to zero, the others renormalised to sum
    to one; a sample with no modality present gives zeros.
    """

    def __init__(self, in_features: Mapping[str, FeatureSpec], dim: int | None = None) -> None:
        super().__init__(in_features)
        self.in_features = pooled_inputs(in_features)
        check_dim("dim", dim)
        width = dim if dim is not None else max(f.dim for f in self.in_features.values())
        self.hidden = nn.ModuleDict(
            {m: nn.Linear(f.dim, width, bias=False) for m, f in self.in_features.items()}
        )
        total = sum(f.dim for f in self.in_features.values())
        n = len(self.in_features)
        self.gate = nn.Linear(total, width if n == 2 else n * width)
        self.width = width
        self._output = FeatureSpec(width)

    def gates(self, inputs: Tensor) -> Tensor:
        """Raw gates ``(B, N, dim)`` (summing to one over ``N``) from concatenated inputs."""
        logits = self.gate(inputs)
        if len(self.hidden) == 2:
            z = torch.sigmoid(logits)
            return torch.stack([z, 1 - z], dim=1)
        return logits.reshape(len(logits), len(self.hidden), self.width).softmax(dim=1)

    def forward(
        self, features: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        xs, hs, keeps = [], [], []
        for name, hidden in self.hidden.items():
            x = pooled(features[name])
            keep = keep_or_ones(masks, name, x)
            xs.append(x * keep)
            hs.append(torch.tanh(hidden(x)))
            keeps.append(keep)
        keep = torch.stack(keeps, dim=1)  # (B, N, 1)
        z = self.gates(torch.cat(xs, dim=-1)) * keep
        z = z / z.sum(dim=1, keepdim=True).clamp_min(1e-12)
        return (z * torch.stack(hs, dim=1)).sum(dim=1)

"""``film``: one modality modulates the others by feature-wise affine maps (FiLM)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from modalforge.contracts import FeatureSpec, Fusion
from modalforge_fusion.masking import keep_or_ones, pooled, pooled_inputs


class FiLMFusion(Fusion):
    """``(1 + γ) ⊙ x + β`` with ``γ, β = Linear(condition)`` for every other modality ``x``.

    The maps are zero-initialised, so at start the fusion is the plain concatenation of the other
    modalities (in ``in_features`` order), followed by the condition if ``include_condition``.
    An absent condition modulates nothing (``γ = β = 0``); an absent modulated modality's slice is
    zero, as is an absent condition's slice when included.
    """

    def __init__(
        self,
        in_features: Mapping[str, FeatureSpec],
        condition: str,
        include_condition: bool = False,
    ) -> None:
        super().__init__(in_features)
        self.in_features = pooled_inputs(in_features)
        if condition not in self.in_features:
            raise ValueError(
                f"condition {condition!r} is not one of the fused modalities "
                f"{sorted(self.in_features)}; name one of them"
            )
        if len(self.in_features) < 2:
            raise ValueError("film needs the condition and at least one other modality")
        self.condition = condition
        self.include_condition = include_condition
        cond_dim = self.in_features[condition].dim
        self.film = nn.ModuleDict()
        for m, f in self.in_features.items():
            if m != condition:
                layer = nn.Linear(cond_dim, 2 * f.dim)
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
                self.film[m] = layer
        width = sum(f.dim for m, f in self.in_features.items() if m != condition)
        self._output = FeatureSpec(width + (cond_dim if include_condition else 0))

    def forward(
        self, features: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        cond = pooled(features[self.condition])
        cond_keep = keep_or_ones(masks, self.condition, cond)
        cond = cond * cond_keep
        parts = []
        for name, layer in self.film.items():
            x = pooled(features[name])
            gamma, beta = (layer(cond) * cond_keep).chunk(2, dim=-1)
            parts.append(((1 + gamma) * x + beta) * keep_or_ones(masks, name, x))
        if self.include_condition:
            parts.append(cond)
        return torch.cat(parts, dim=-1)

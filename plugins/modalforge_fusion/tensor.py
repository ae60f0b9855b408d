"""``tensor`` (TFN, Zadeh et al. 2017) and ``low_rank_tensor`` (LMF, Liu et al. 2018)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from modalforge.contracts import FeatureSpec, Fusion
from modalforge_fusion.masking import check_dim, keep_or_ones, pooled, pooled_inputs, with_one


def outer_flat(zs: list[Tensor]) -> Tensor:
    """Batched outer product of ``(B, a)``, ``(B, b)``, … flattened to ``(B, a·b·…)``."""
    out = zs[0]
    for z in zs[1:]:
        out = (out.unsqueeze(-1) * z.unsqueeze(1)).flatten(1)
    return out


class TensorFusion(Fusion):
    """Tensor fusion: the flattened outer product of ``[x_m, 1]`` over modalities.

    Each input is first projected to ``dim`` if given. The appended 1 keeps every unimodal and
    lower-order term in the product. The product has ``∏(d_m + 1)`` features; above
    ``max_features`` construction fails (pick a smaller ``dim``). ``out_dim`` adds a final linear
    layer. An absent modality's vector becomes ``(0, …, 0, 1)``, so the output equals the tensor
    fusion of the others times a constant-1 factor.
    """

    def __init__(
        self,
        in_features: Mapping[str, FeatureSpec],
        dim: int | None = None,
        out_dim: int | None = None,
        max_features: int = 65536,
    ) -> None:
        super().__init__(in_features)
        self.in_features = pooled_inputs(in_features)
        check_dim("dim", dim)
        check_dim("out_dim", out_dim)
        widths = {m: dim or f.dim for m, f in self.in_features.items()}
        size = math.prod(w + 1 for w in widths.values())
        if size > max_features:
            raise ValueError(
                f"tensor fusion of widths {widths} has {size} features, more than max_features="
                f"{max_features}; set a smaller `dim` (each input is projected to it) or raise "
                "max_features"
            )
        self.proj = nn.ModuleDict(
            {
                m: nn.Linear(f.dim, dim) if dim else nn.Identity()
                for m, f in self.in_features.items()
            }
        )
        self.out: nn.Module = nn.Linear(size, out_dim) if out_dim else nn.Identity()
        self.product_size = size
        self._output = FeatureSpec(out_dim or size)

    def product(
        self, features: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        """The flattened outer product ``(B, ∏(d_m + 1))``, before ``out_dim``."""
        zs = []
        for name, proj in self.proj.items():
            x = proj(pooled(features[name]))
            zs.append(with_one(x, keep_or_ones(masks, name, x)))
        return outer_flat(zs)

    def forward(
        self, features: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        return self.out(self.product(features, masks))


class LowRankTensorFusion(Fusion):
    """Low-rank multimodal fusion: a rank-``rank`` factorisation of the tensor-fusion weight.

    ``out = Σ_r w_r ∏_m ([x_m, 1] · F_m[r]) + b`` with trainable factors ``F_m`` of shape
    ``(rank, d_m + 1, out_dim)`` — registered parameters, so they train (MultiBench kept them in a
    plain list). Equal to a linear layer on the TFN product whose weight is
    ``Σ_r w_r ⊗_m F_m[r]``. An absent modality's vector becomes ``(0, …, 0, 1)``, as in TFN.
    """

    def __init__(
        self, in_features: Mapping[str, FeatureSpec], out_dim: int = 32, rank: int = 4
    ) -> None:
        super().__init__(in_features)
        self.in_features = pooled_inputs(in_features)
        check_dim("out_dim", out_dim)
        check_dim("rank", rank)
        self.order = tuple(self.in_features)
        factors = []
        for f in self.in_features.values():
            factor = nn.Parameter(torch.empty(rank, f.dim + 1, out_dim))
            nn.init.xavier_normal_(factor)
            factors.append(factor)
        self.factors = nn.ParameterList(factors)
        self.fusion_weights = nn.Parameter(torch.empty(1, rank))
        nn.init.xavier_normal_(self.fusion_weights)
        self.bias = nn.Parameter(torch.zeros(1, out_dim))
        self._output = FeatureSpec(out_dim)

    def forward(
        self, features: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        fused: Tensor | None = None
        for name, factor in zip(self.order, self.factors, strict=True):
            x = pooled(features[name])
            z = with_one(x, keep_or_ones(masks, name, x))
            part = torch.einsum("bd,rdo->rbo", z, factor)
            fused = part if fused is None else fused * part
        assert fused is not None
        return torch.einsum("r,rbo->bo", self.fusion_weights[0], fused) + self.bias

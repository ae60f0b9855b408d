"""``token_learner``: token fusion with TokenLearner reduction (Ryoo et al. 2021, RT-1).

A camera's feature map gives hundreds of tokens; TokenLearner learns ``num_tokens`` spatial
attention maps per modality and keeps one token per map, so the transformer that fuses all
modalities runs on a few tokens (RT-1: 81 → 8 per image).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
from torch import Tensor, nn

from modalforge.contracts import FeatureSpec, Fusion
from modalforge_fusion.attention import _check_heads, as_tokens, present, token_inputs
from modalforge_fusion.masking import check_dim

Attention = Literal["sigmoid", "softmax"]


class TokenLearner(nn.Module):
    """``(B, N, D)`` tokens → ``(B, S, D)`` learned tokens.

    An MLP on the layer-normalised tokens scores each of the ``N`` positions for each of the
    ``S`` output tokens; token ``s`` is ``mean_n(a[n, s] · x[n])`` with ``a = sigmoid(scores)``
    (the paper's v1) or ``sum_n(a[n, s] · x[n])`` with ``a = softmax`` over positions.
    """

    def __init__(
        self, dim: int, num_tokens: int, hidden: int = 64, attention: Attention = "sigmoid"
    ) -> None:
        super().__init__()
        check_dim("num_tokens", num_tokens)
        if attention not in ("sigmoid", "softmax"):
            raise ValueError(f"attention must be 'sigmoid' or 'softmax', got {attention!r}")
        self.num_tokens, self.attention = num_tokens, attention
        self.norm = nn.LayerNorm(dim)
        self.score = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, num_tokens))

    def weights(self, x: Tensor) -> Tensor:
        """``(B, N, S)`` attention of each output token over the input positions."""
        scores = self.score(self.norm(x))
        if self.attention == "softmax":
            return scores.softmax(dim=1)
        return scores.sigmoid() / x.shape[1]

    def forward(self, x: Tensor) -> Tensor:
        return torch.einsum("bns,bnd->bsd", self.weights(x), x)


class TokenLearnerFusion(Fusion):
    """Each modality's tokens projected to ``dim`` and reduced to ``num_tokens`` by its own
    :class:`TokenLearner` (pooled inputs stay one token), tagged with a learned modality embedding,
    concatenated and fused by ``layers`` transformer layers. ``readout="mean"`` averages the
    present tokens (width ``dim``); ``"flatten"`` concatenates them all (RT-1 style, width
    ``total tokens · dim``). An absent modality's tokens are masked out of attention and of the
    readout (zero in ``flatten``).
    """

    def __init__(
        self,
        in_features: Mapping[str, FeatureSpec],
        dim: int = 64,
        num_tokens: int = 8,
        heads: int = 4,
        layers: int = 2,
        attention: Attention = "sigmoid",
        readout: Literal["mean", "flatten"] = "mean",
        dropout: float = 0.0,
    ) -> None:
        super().__init__(in_features)
        self.in_features = token_inputs(in_features)
        _check_heads(dim, heads, layers)
        if readout not in ("mean", "flatten"):
            raise ValueError(f"readout must be 'mean' or 'flatten', got {readout!r}")
        self.readout = readout
        self.proj = nn.ModuleDict({m: nn.Linear(f.dim, dim) for m, f in self.in_features.items()})
        self.learners = nn.ModuleDict(
            {
                m: TokenLearner(dim, num_tokens, attention=attention)
                for m, f in self.in_features.items()
                if f.tokens
            }
        )
        self.modality = nn.ParameterDict(
            {m: nn.Parameter(torch.randn(1, 1, dim) * 0.02) for m in self.in_features}
        )
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(
                dim, heads, 4 * dim, dropout, batch_first=True, norm_first=True
            ),
            layers,
            enable_nested_tensor=False,
        )
        self.norm = nn.LayerNorm(dim)
        self.counts = {m: num_tokens if m in self.learners else 1 for m in self.in_features}
        total = sum(self.counts.values())
        self._output = FeatureSpec(dim if readout == "mean" else total * dim)

    def forward(
        self, features: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        seqs, keeps = [], []
        for m, proj in self.proj.items():
            x = proj(as_tokens(features[m]))
            if m in self.learners:
                x = self.learners[m](x)
            seqs.append(x + self.modality[m])
            keeps.append(present(masks, m, x).unsqueeze(1).expand(-1, x.shape[1]))
        tokens, keep = torch.cat(seqs, dim=1), torch.cat(keeps, dim=1)
        # a sample with every modality absent attends to all (finite), then reads out zeros
        pad = ~keep & keep.any(dim=1, keepdim=True)
        y = self.norm(self.encoder(tokens, src_key_padding_mask=pad))
        w = keep.unsqueeze(-1).to(y.dtype)
        if self.readout == "flatten":
            return (y * w).flatten(1)
        return (y * w).sum(1) / w.sum(1).clamp_min(1.0)

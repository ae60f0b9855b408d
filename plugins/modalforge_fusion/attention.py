"""Token-level fusions: ``cross_attention`` (MulT-style) and ``bottleneck`` (MBT)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
from torch import Tensor, nn

from modalforge.contracts import FeatureSpec, Fusion
from modalforge_fusion.masking import check_dim


def token_inputs(in_features: Mapping[str, FeatureSpec]) -> dict[str, FeatureSpec]:
    """Ask for token sequences from every encoder that can produce them (pooled otherwise)."""
    return {m: FeatureSpec(f.dim, tokens=f.tokens) for m, f in in_features.items()}


def as_tokens(x: Tensor) -> Tensor:
    """``(B, T, D)`` as is; a pooled ``(B, D)`` vector becomes a length-1 sequence."""
    return x if x.ndim == 3 else x.unsqueeze(1)


def present(masks: Mapping[str, Tensor] | None, name: str, like: Tensor) -> Tensor:
    """``(B,)`` bool presence of ``name`` (all ``True`` without a mask entry)."""
    if masks is None or name not in masks:
        return torch.ones(like.shape[0], dtype=torch.bool, device=like.device)
    return masks[name].reshape(-1).to(device=like.device, dtype=torch.bool)


def _check_heads(dim: int, heads: int, layers: int) -> None:
    check_dim("dim", dim)
    check_dim("heads", heads)
    check_dim("layers", layers)
    if dim % heads:
        raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")


class CrossAttentionBlock(nn.Module):
    """Pre-norm cross-attention from queries to a key/value sequence, then a feed-forward."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm_q, self.norm_kv, self.norm_ff = (nn.LayerNorm(dim) for _ in range(3))
        # add_zero_attn: a zero key/value always present, so a query whose keys are all
        # masked (every other modality absent) still gets a finite, zero attention result
        self.attn = nn.MultiheadAttention(
            dim, heads, dropout=dropout, batch_first=True, add_zero_attn=True
        )
        self.ff = nn.Sequential(
            nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * dim, dim)
        )

    def forward(self, x: Tensor, kv: Tensor, pad: Tensor) -> Tensor:
        kv = self.norm_kv(kv)
        x = x + self.attn(self.norm_q(x), kv, kv, key_padding_mask=pad, need_weights=False)[0]
        return x + self.ff(self.norm_ff(x))


class CrossAttentionFusion(Fusion):
    """Each modality's tokens attend to the other modalities' tokens (MulT-style), then pooled.

    Inputs are projected to ``dim``; per target modality, ``layers`` cross-attention blocks with
    queries from that modality and keys/values from the concatenated tokens of all others. The
    output is the concatenation over modalities of the mean over tokens, width ``N · dim``.
    Encoders without token output are used as length-1 sequences. An absent modality's tokens
    are masked out of every key set (``key_padding_mask``) and its own output slice is zero.
    """

    def __init__(
        self,
        in_features: Mapping[str, FeatureSpec],
        dim: int = 64,
        heads: int = 4,
        layers: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(in_features)
        self.in_features = token_inputs(in_features)
        if len(self.in_features) < 2:
            raise ValueError("cross_attention needs at least two modalities")
        _check_heads(dim, heads, layers)
        self.proj = nn.ModuleDict({m: nn.Linear(f.dim, dim) for m, f in self.in_features.items()})
        self.blocks = nn.ModuleDict(
            {
                m: nn.ModuleList(CrossAttentionBlock(dim, heads, dropout) for _ in range(layers))
                for m in self.in_features
            }
        )
        self._output = FeatureSpec(len(self.in_features) * dim)

    def forward(
        self, features: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        tokens = {m: proj(as_tokens(features[m])) for m, proj in self.proj.items()}
        keep = {m: present(masks, m, t) for m, t in tokens.items()}
        outs = []
        for target, blocks in self.blocks.items():
            others = [m for m in tokens if m != target]
            kv = torch.cat([tokens[m] for m in others], dim=1)
            pad = torch.cat(
                [(~keep[m]).unsqueeze(1).expand(-1, tokens[m].shape[1]) for m in others], dim=1
            )
            x = tokens[target]
            for block in blocks:
                x = block(x, kv, pad)
            outs.append(x.mean(dim=1) * keep[target].unsqueeze(1).to(x.dtype))
        return torch.cat(outs, dim=-1)


class BottleneckFusion(Fusion):
    """Attention bottlenecks (MBT, Nagrani et al. 2021): modalities exchange only through tokens.

    Inputs are projected to ``dim``; ``num_bottlenecks`` learnable tokens are appended to every
    modality's sequence in each of ``layers`` modality-specific transformer layers, and the
    updated bottlenecks are averaged over the modalities. ``readout="bottleneck"`` returns the
    mean of the final bottleneck tokens (width ``dim``); ``readout="cls"`` prepends a learnable
    CLS token per modality and returns their concatenation (width ``N · dim``). An absent modality
    takes no part in the bottleneck update (and its CLS slice is zero); with none present the
    bottleneck tokens keep their learned values.
    """

    def __init__(
        self,
        in_features: Mapping[str, FeatureSpec],
        dim: int = 64,
        heads: int = 4,
        layers: int = 2,
        num_bottlenecks: int = 4,
        readout: Literal["bottleneck", "cls"] = "bottleneck",
        dropout: float = 0.0,
    ) -> None:
        super().__init__(in_features)
        self.in_features = token_inputs(in_features)
        _check_heads(dim, heads, layers)
        check_dim("num_bottlenecks", num_bottlenecks)
        if readout not in ("bottleneck", "cls"):
            raise ValueError(f"readout must be 'bottleneck' or 'cls', got {readout!r}")
        self.readout = readout
        self.proj = nn.ModuleDict({m: nn.Linear(f.dim, dim) for m, f in self.in_features.items()})
        self.bottleneck = nn.Parameter(torch.randn(1, num_bottlenecks, dim) * 0.02)
        self.cls = (
            nn.ParameterDict(
                {m: nn.Parameter(torch.randn(1, 1, dim) * 0.02) for m in self.in_features}
            )
            if readout == "cls"
            else None
        )
        self.layers = nn.ModuleDict(
            {
                m: nn.ModuleList(
                    nn.TransformerEncoderLayer(
                        dim, heads, 4 * dim, dropout, batch_first=True, norm_first=True
                    )
                    for _ in range(layers)
                )
                for m in self.in_features
            }
        )
        n = len(self.in_features)
        self._output = FeatureSpec(dim if readout == "bottleneck" else n * dim)

    def forward(
        self, features: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        xs = {m: proj(as_tokens(features[m])) for m, proj in self.proj.items()}
        if self.cls is not None:
            xs = {m: torch.cat([self.cls[m].expand(len(x), -1, -1), x], 1) for m, x in xs.items()}
        keep = {m: present(masks, m, x).to(x.dtype).reshape(-1, 1, 1) for m, x in xs.items()}
        count = sum(keep.values())
        assert isinstance(count, Tensor)
        batch = next(iter(xs.values())).shape[0]
        b = self.bottleneck.expand(batch, -1, -1)
        n_b = b.shape[1]
        depth = len(next(iter(self.layers.values())))
        for i in range(depth):
            total = torch.zeros_like(b)
            for m, x in xs.items():
                y = self.layers[m][i](torch.cat([x, b], dim=1))
                xs[m], b_m = y[:, :-n_b], y[:, -n_b:]
                total = total + b_m * keep[m]
            b = torch.where(count > 0, total / count.clamp_min(1.0), b)
        if self.cls is None:
            return b.mean(dim=1)
        return torch.cat([xs[m][:, 0] * keep[m][:, 0] for m in xs], dim=-1)

"""A decoder-only (causal) pre-LN transformer with a key/value cache for incremental decoding.

Attention is ``torch.nn.functional.scaled_dot_product_attention`` (flash / memory-efficient
kernels where available). With a :class:`KVCache`, each call appends its keys and values, so
generation feeds one new token per step instead of the whole sequence.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class KVCache:
    """Preallocated keys and values of every layer, ``(B, heads, max_len, head_dim)`` each."""

    def __init__(
        self,
        layers: int,
        batch: int,
        heads: int,
        max_len: int,
        head_dim: int,
        *,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        shape = (batch, heads, max_len, head_dim)
        self.keys = [torch.empty(shape, device=device, dtype=dtype) for _ in range(layers)]
        self.values = [torch.empty(shape, device=device, dtype=dtype) for _ in range(layers)]
        self.length = 0  # positions filled (advanced by the transformer after all layers)
        self.max_len = max_len


class CausalSelfAttention(nn.Module):
    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: Tensor, cache: KVCache | None = None, layer: int = 0) -> Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        p = self.dropout if self.training else 0.0
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        else:
            start = cache.length
            cache.keys[layer][:, :, start : start + t] = k.to(cache.keys[layer].dtype)
            cache.values[layer][:, :, start : start + t] = v.to(cache.values[layer].dtype)
            keys = cache.keys[layer][:, :, : start + t].to(q.dtype)
            values = cache.values[layer][:, :, : start + t].to(q.dtype)
            if t == 1:  # the new token sees every cached position
                y = F.scaled_dot_product_attention(q, keys, values, dropout_p=p)
            else:  # query i sits at position start + i (is_causal would align them at 0)
                pos = torch.arange(start + t, device=x.device)
                mask = pos[None, :] <= (start + torch.arange(t, device=x.device))[:, None]
                y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, dropout_p=p)
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class Block(nn.Module):
    """``x + attn(ln(x))``, then ``x + mlp(ln(x))``."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.ln_1 = nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, heads, dropout)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width), nn.Dropout(dropout)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, cache: KVCache | None = None, layer: int = 0) -> Tensor:
        x = x + self.drop(self.attn(self.ln_1(x), cache, layer))
        return x + self.mlp(self.ln_2(x))


class CausalTransformer(nn.Module):
    """``layers`` causal blocks and a final LayerNorm over embedded inputs ``(B, T, width)``."""

    def __init__(
        self, width: int, layers: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.width, self.heads = width, heads
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio, dropout) for _ in range(layers))
        self.ln_f = nn.LayerNorm(width)
        self.apply(_init)
        for block in self.blocks:  # GPT-2: residual projections scaled by depth
            for proj in (block.attn.proj, block.mlp[2]):
                nn.init.normal_(proj.weight, std=0.02 / (2 * layers) ** 0.5)

    def new_cache(
        self, batch: int, max_len: int, *, device: torch.device, dtype: torch.dtype
    ) -> KVCache:
        return KVCache(
            len(self.blocks),
            batch,
            self.heads,
            max_len,
            self.width // self.heads,
            device=device,
            dtype=dtype,
        )

    def forward(self, x: Tensor, cache: KVCache | None = None) -> Tensor:
        """Hidden states of every input position; with ``cache``, ``x`` continues the cached
        sequence and is appended to it."""
        if cache is not None and cache.length + x.shape[1] > cache.max_len:
            raise ValueError(f"KV cache of {cache.max_len} positions is full")
        for i, block in enumerate(self.blocks):
            x = block(x, cache, i)
        if cache is not None:
            cache.length += x.shape[1]
        return self.ln_f(x)


def _init(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)

"""Denoising networks of the diffusion generator: ``(x_t, t, condition) → ε or v``.

Both read one embedding per sample, the sum of a sinusoidal timestep embedding and the projected
text embedding, and inject it into every block as a scale and shift of the normalised
activations (adaptive GroupNorm / LayerNorm, as in Dhariwal & Nichol 2021). Output layers start
at zero, so an untrained network predicts 0 (the mean of ``ε``) and training starts stable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from modalforge_generators.gan_nets import num_resamplings


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding ``(B, dim)`` of integer steps ``t`` (Vaswani et al., as in DDPM)."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half
    )
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class ConditionEmbedding(nn.Module):
    """Timestep embedding + projected text embedding → the per-sample embedding ``(B, dim)``."""

    def __init__(self, text_dim: int, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.time = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.text = nn.Sequential(nn.Linear(text_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: Tensor, text: Tensor) -> Tensor:
        return self.time(timestep_embedding(t, self.dim).to(text.dtype)) + self.text(text)


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def _groups(channels: int) -> int:
    for g in (32, 16, 8, 4, 2):
        if channels % g == 0 and channels // g >= 2:
            return g
    return 1


class ResBlock(nn.Module):
    """GroupNorm–SiLU–conv, adaptive GroupNorm (scale, shift from the embedding)–SiLU–dropout–
    conv, plus a (1×1 conv) skip."""

    def __init__(self, cin: int, cout: int, emb_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(cin), cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * cout)
        self.norm2 = nn.GroupNorm(_groups(cout), cout)
        self.drop = nn.Dropout(dropout)
        self.conv2 = _zero(nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(self.drop(F.silu(h)))


class ConvDenoiser(nn.Module):
    """A small U-Net: ``len(mults)`` resolutions (as many ×2 downsamplings as the image size
    allows), ``blocks`` residual blocks each, skip connections by concatenation.

    Scale-and-shift conditioning is the same at every pixel, so it cannot say *where* something
    belongs ("at the top left"). The embedding is therefore also mapped to a feature map at the
    lowest resolution and added before the middle blocks, as a GAN generator's first layer maps
    its input to a spatial grid (without it a shapes model ignored positions entirely).
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        text_dim: int,
        width: int = 64,
        mults: Sequence[int] = (1, 2, 2),
        blocks: int = 2,
        emb_dim: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        c, h, w = image_shape
        levels = min(len(mults), num_resamplings(h, w, most=len(mults) - 1) + 1)
        chans = [width * m for m in mults[:levels]]
        emb_dim = emb_dim or 4 * width
        self.embed = ConditionEmbedding(text_dim, emb_dim)
        self.inp = nn.Conv2d(c, width, 3, padding=1)
        self.down = nn.ModuleList()
        skips, ch = [width], width
        for i, cout in enumerate(chans):
            for _ in range(blocks):
                self.down.append(ResBlock(ch, cout, emb_dim, dropout))
                ch = cout
                skips.append(ch)
            if i < levels - 1:
                self.down.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skips.append(ch)
        self.low = (h // 2 ** (levels - 1), w // 2 ** (levels - 1))
        self.layout = _zero(nn.Linear(emb_dim, ch * self.low[0] * self.low[1]))
        self.mid = nn.ModuleList(
            [ResBlock(ch, ch, emb_dim, dropout), ResBlock(ch, ch, emb_dim, dropout)]
        )
        self.up = nn.ModuleList()
        for i, cout in reversed(list(enumerate(chans))):
            for _ in range(blocks + 1):
                self.up.append(ResBlock(ch + skips.pop(), cout, emb_dim, dropout))
                ch = cout
            if i > 0:  # the conv after upsampling already narrows to the next level's width
                self.up.append(nn.Upsample(scale_factor=2.0, mode="nearest"))
                self.up.append(nn.Conv2d(ch, chans[i - 1], 3, padding=1))
                ch = chans[i - 1]
        self.out = nn.Sequential(
            nn.GroupNorm(_groups(ch), ch), nn.SiLU(), _zero(nn.Conv2d(ch, c, 3, padding=1))
        )

    def forward(self, x: Tensor, t: Tensor, text: Tensor) -> Tensor:
        emb = self.embed(t, text)
        h = self.inp(x)
        skips = [h]
        for layer in self.down:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
            skips.append(h)
        h = h + self.layout(F.silu(emb)).view(h.shape)
        for layer in self.mid:
            h = layer(h, emb)
        for layer in self.up:
            if isinstance(layer, ResBlock):
                h = layer(torch.cat([h, skips.pop()], dim=1), emb)
            else:
                h = layer(h)
        return self.out(h)


class MLPBlock(nn.Module):
    """Pre-norm residual MLP block with an adaptive LayerNorm."""

    def __init__(self, width: int, emb_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.emb = nn.Linear(emb_dim, 2 * width)
        self.fc1 = nn.Linear(width, 2 * width)
        self.drop = nn.Dropout(dropout)
        self.fc2 = _zero(nn.Linear(2 * width, width))

    def forward(self, h: Tensor, emb: Tensor) -> Tensor:
        scale, shift = self.emb(F.silu(emb)).chunk(2, dim=1)
        x = self.norm(h) * (1 + scale) + shift
        return h + self.fc2(self.drop(F.silu(self.fc1(x))))


class MLPDenoiser(nn.Module):
    """An MLP over the flattened image: for tiny images (8×8 digits), fast on a CPU."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        text_dim: int,
        width: int = 256,
        layers: int = 3,
        emb_dim: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.image_shape = image_shape
        size = math.prod(image_shape)
        emb_dim = emb_dim or width
        self.embed = ConditionEmbedding(text_dim, emb_dim)
        self.inp = nn.Linear(size, width)
        self.blocks = nn.ModuleList(MLPBlock(width, emb_dim, dropout) for _ in range(layers))
        self.out = nn.Sequential(nn.LayerNorm(width), _zero(nn.Linear(width, size)))

    def forward(self, x: Tensor, t: Tensor, text: Tensor) -> Tensor:
        emb = self.embed(t, text)
        h = self.inp(x.flatten(1))
        for block in self.blocks:
            h = block(h, emb)
        return self.out(h).view(x.shape)

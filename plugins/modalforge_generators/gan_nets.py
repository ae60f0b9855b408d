"""The networks of the text-conditional GAN: conv (FiLM-conditioned) or MLP generators, a
projection discriminator with spectral norm over conv or MLP features, and DiffAugment-style
differentiable translation."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm


def num_resamplings(height: int, width: int, most: int = 3) -> int:
    """How many ×2 up/down-samplings fit an ``height × width`` image (base size at least 2).

    8×8 → 2 (2×2 base), 32×32 → 3 (4×4 base), 28×28 → 2 (7×7 base), odd sizes → 0.
    """
    k = 0
    while k < most and height % 2 ** (k + 1) == 0 and width % 2 ** (k + 1) == 0:
        if min(height, width) // 2 ** (k + 1) < 2:
            break
        k += 1
    return k


class FiLMNorm(nn.Module):
    """GroupNorm without affine, then a per-sample scale and shift from the condition.

    Per-sample normalisation (no running statistics) behaves the same in train and eval mode,
    so the EMA generator needs no batch-statistics recalibration.
    """

    def __init__(self, channels: int, cond_dim: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(min(8, channels), channels, affine=False)
        self.scale = nn.Linear(cond_dim, channels)
        self.shift = nn.Linear(cond_dim, channels)
        for lin in (self.scale, self.shift):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        gamma = 1.0 + self.scale(cond)[:, :, None, None]
        beta = self.shift(cond)[:, :, None, None]
        return self.norm(x) * gamma + beta


class ConvGenerator(nn.Module):
    """``(z, text embedding)`` → image ``(C, H, W)`` in ``[0, 1]`` (sigmoid output).

    The text embedding is projected to ``cond_dim`` (a two-layer MLP); ``s = [z, cond]`` is mapped
    to a ``channels × h × w`` base grid, then ``n`` blocks of nearest ×2 upsampling, 3×3 conv,
    GroupNorm FiLM-modulated by ``s`` and ReLU reach the image size; a final 3×3 conv gives the
    pixels. Condition and noise enter every block (as BigGAN's conditional norms), so neither can
    be washed out by depth.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        text_dim: int,
        latent_dim: int,
        cond_dim: int,
        channels: int,
    ) -> None:
        super().__init__()
        c, h, w = image_shape
        self.image_shape = (c, h, w)
        self.latent_dim = latent_dim
        self.ups = num_resamplings(h, w)
        self.base = (h // 2**self.ups, w // 2**self.ups)
        self.channels = channels
        self.cond = nn.Sequential(
            nn.Linear(text_dim, cond_dim), nn.LeakyReLU(0.2), nn.Linear(cond_dim, cond_dim)
        )
        self.fc = nn.Linear(latent_dim + cond_dim, channels * self.base[0] * self.base[1])
        style = latent_dim + cond_dim
        self.norm0 = FiLMNorm(channels, style)
        self.convs = nn.ModuleList(
            nn.Conv2d(channels, channels, 3, padding=1) for _ in range(max(1, self.ups))
        )
        self.norms = nn.ModuleList(FiLMNorm(channels, style) for _ in self.convs)
        self.out = nn.Conv2d(channels, c, 3, padding=1)

    def forward(self, z: Tensor, text: Tensor) -> Tensor:
        style = torch.cat([z, self.cond(text)], dim=1)
        x = self.fc(style).view(-1, self.channels, *self.base)
        x = F.relu(self.norm0(x, style))
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            if i < self.ups:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = F.relu(norm(conv(x), style))
        return torch.sigmoid(self.out(x))


class MLPGenerator(nn.Module):
    """``(z, text embedding)`` → image via an MLP: for tiny images (8×8 digits), fast on a CPU.

    ``s = [z, cond]`` enters every hidden layer (concatenated), LayerNorm + ReLU, sigmoid output.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        text_dim: int,
        latent_dim: int,
        cond_dim: int,
        width: int,
        layers: int = 2,
    ) -> None:
        super().__init__()
        self.image_shape = image_shape
        self.latent_dim = latent_dim
        self.cond = nn.Sequential(
            nn.Linear(text_dim, cond_dim), nn.LeakyReLU(0.2), nn.Linear(cond_dim, cond_dim)
        )
        style = latent_dim + cond_dim
        self.hidden = nn.ModuleList(
            nn.Linear((0 if i == 0 else width) + style, width) for i in range(layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(layers))
        self.out = nn.Linear(width, math.prod(image_shape))

    def forward(self, z: Tensor, text: Tensor) -> Tensor:
        style = torch.cat([z, self.cond(text)], dim=1)
        h = style
        for i, (lin, norm) in enumerate(zip(self.hidden, self.norms, strict=True)):
            h = F.relu(norm(lin(h if i == 0 else torch.cat([h, style], dim=1))))
        return torch.sigmoid(self.out(h)).view(-1, *self.image_shape)


def conv_features(image_shape: tuple[int, int, int], channels: int, downs: int) -> nn.Module:
    """φ of the conv discriminator: a 3×3 conv, then per downsampling a 3×3 conv and a 4×4
    stride-2 conv (LeakyReLU 0.2, widths doubling up to 4×), summed over space."""
    layers: list[nn.Module] = [spectral_norm(nn.Conv2d(image_shape[0], channels, 3, padding=1))]
    width = channels
    for _ in range(downs):
        nxt = min(width * 2, channels * 4)
        layers += [
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(width, width, 3, padding=1)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(width, nxt, 4, stride=2, padding=1)),
        ]
        width = nxt
    layers += [nn.LeakyReLU(0.2), SumPool()]
    net = nn.Sequential(*layers)
    net.out_dim = width
    return net


def mlp_features(image_shape: tuple[int, int, int], width: int, layers: int = 2) -> nn.Module:
    """φ of the MLP discriminator: flattened pixels through ``layers`` SN-linear + LeakyReLU."""
    mods: list[nn.Module] = [nn.Flatten()]
    dim = math.prod(image_shape)
    for _ in range(layers):
        mods += [spectral_norm(nn.Linear(dim, width)), nn.LeakyReLU(0.2)]
        dim = width
    net = nn.Sequential(*mods)
    net.out_dim = width
    return net


class SumPool(nn.Module):
    """``(B, C, H, W)`` → ``(B, C)``: sum over space (as in the projection-D paper)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.sum(dim=(2, 3))


class ProjectionDiscriminator(nn.Module):
    """Miyato & Koyama (2018): ``D(x, c) = ψ(φ(x)) + <embed(c), φ(x)>``, spectral norm throughout.

    ``φ`` (``features``: :func:`conv_features` or :func:`mlp_features`) maps an image to
    ``(B, F)``; ``ψ`` is a linear map to one logit; ``embed`` a linear map of the text embedding
    into φ's space, whose inner product with φ(x) scores image–text agreement.
    """

    def __init__(self, features: nn.Module, text_dim: int) -> None:
        super().__init__()
        self.features = features
        self.feature_dim = int(features.out_dim)
        self.psi = spectral_norm(nn.Linear(self.feature_dim, 1))
        self.embed = spectral_norm(nn.Linear(text_dim, self.feature_dim, bias=False))

    def phi(self, x: Tensor) -> Tensor:
        """Image features ``(B, feature_dim)``."""
        return self.features(x)

    def score(self, h: Tensor, text: Tensor) -> Tensor:
        """Logits ``(B,)`` from image features ``h = φ(x)`` (reused for mismatched texts)."""
        return self.psi(h).squeeze(1) + (self.embed(text) * h).sum(dim=1)

    def forward(self, x: Tensor, text: Tensor) -> Tensor:
        """One logit per (image, text embedding) pair, ``(B,)``."""
        return self.score(self.phi(x), text)


def translate(x: Tensor, ratio: float) -> Tensor:
    """Shift each image by a random integer offset up to ``ratio`` of its size, zero-filled.

    Differentiable in ``x`` (DiffAugment, Zhao et al. 2020): applied to real and generated images
    alike, the discriminator cannot memorise exact pixel positions and the generator is not
    pushed to produce shifted images. Draws from the default torch RNG.
    """
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    if sh == 0 and sw == 0:
        return x
    dy = torch.randint(-sh, sh + 1, (b, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (b, 1, 1), device=x.device)
    gb, gy, gx = torch.meshgrid(
        torch.arange(b, device=x.device),
        torch.arange(h, device=x.device),
        torch.arange(w, device=x.device),
        indexing="ij",
    )
    gy = (gy + dy + sh).clamp(0, h + 2 * sh - 1)
    gx = (gx + dx + sw).clamp(0, w + 2 * sw - 1)
    padded = F.pad(x, [sw, sw, sh, sh])
    return padded.permute(0, 2, 3, 1)[gb, gy, gx].permute(0, 3, 1, 2).contiguous()

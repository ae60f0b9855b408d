"""Building blocks of the observation encoders: FiLM conditioning and spatial-softmax keypoints."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class FiLM(nn.Module):
    """Feature-wise linear modulation ``(1 + γ) · x + β`` of ``(B, C, H, W)`` maps by a
    condition ``(B, condition_dim)`` (RT-1, BC-Z).

    The projection to ``(γ, β)`` starts at zero, so an untrained FiLM layer is the identity and a
    pretrained trunk keeps its behaviour until the condition is learnt.
    """

    def __init__(self, condition_dim: int, channels: int) -> None:
        super().__init__()
        self.proj = nn.Linear(condition_dim, 2 * channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        gamma, beta = self.proj(condition.to(x.dtype)).chunk(2, dim=-1)
        return (1 + gamma)[:, :, None, None] * x + beta[:, :, None, None]


class SpatialSoftmax(nn.Module):
    """``(B, C, H, W)`` → ``(B, 2K)``: the expected ``(x, y)`` in ``[-1, 1]`` of each of ``K``
    keypoint maps under a softmax over positions (Levine et al. 2016; robomimic's default pooling).

    ``num_keypoints`` adds a 1×1 convolution from ``C`` maps to ``K``; without it ``K = C``. The
    softmax temperature is learnt (``learn_temperature``) from ``temperature``.
    """

    def __init__(
        self,
        channels: int,
        num_keypoints: int | None = None,
        temperature: float = 1.0,
        learn_temperature: bool = True,
    ) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.keypoints = (
            nn.Conv2d(channels, num_keypoints, kernel_size=1)
            if num_keypoints is not None
            else nn.Identity()
        )
        self.num_keypoints = num_keypoints or channels
        log_t = torch.tensor(float(temperature)).log()
        self.log_temperature = nn.Parameter(log_t, requires_grad=learn_temperature)

    def forward(self, maps: Tensor) -> Tensor:
        maps = self.keypoints(maps)
        b, k, h, w = maps.shape
        weights = F.softmax(maps.flatten(2).float() / self.log_temperature.exp(), dim=-1)
        ys = torch.linspace(-1.0, 1.0, h, device=maps.device)
        xs = torch.linspace(-1.0, 1.0, w, device=maps.device)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        x = (weights * grid_x.reshape(1, 1, -1)).sum(-1)
        y = (weights * grid_y.reshape(1, 1, -1)).sum(-1)
        return torch.stack([x, y], dim=-1).reshape(b, 2 * k).to(maps.dtype)


class MapTokens(nn.Module):
    """``(B, C, H, W)`` maps → ``(B, H·W, dim)`` tokens: each position's features with its
    ``(x, y)`` in ``[-1, 1]`` appended (so the tokens know where they are at any map size),
    projected to ``dim``."""

    def __init__(self, channels: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(channels + 2, dim)

    def forward(self, maps: Tensor) -> Tensor:
        b, _, h, w = maps.shape
        ys = torch.linspace(-1.0, 1.0, h, device=maps.device, dtype=maps.dtype)
        xs = torch.linspace(-1.0, 1.0, w, device=maps.device, dtype=maps.dtype)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        coords = torch.stack([grid_x, grid_y]).expand(b, -1, -1, -1)
        return self.proj(torch.cat([maps, coords], dim=1).flatten(2).transpose(1, 2))


def map_readout(
    channels: int, pool: str, num_keypoints: int | None, out_dim: int | None, tokens: bool
) -> tuple[nn.Module, nn.Module, MapTokens | None, int]:
    """``(pool, proj, tokens, dim)`` of a visual trunk whose last maps have ``channels``:
    spatial-softmax keypoints or a global average, an optional projection to ``out_dim``, the
    optional token view of the maps, and the pooled feature width."""
    if pool == "spatial_softmax":
        pooling: nn.Module = SpatialSoftmax(channels, num_keypoints)
        width = 2 * pooling.num_keypoints
    else:
        pooling = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        width = channels
    proj: nn.Module = nn.Linear(width, out_dim) if out_dim else nn.Identity()
    dim = out_dim or width
    return pooling, proj, MapTokens(channels, dim) if tokens else None, dim

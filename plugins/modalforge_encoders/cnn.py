"""``cnn``: a small convolutional net for 2-D images, depth maps and 3-D volumes."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from modalforge.contracts import Encoder, FeatureSpec
from modalforge.modality import Modality, ModalityKind
from modalforge_encoders.layers import check_dropout, check_positive

ConvNorm = Literal["batch", "group", "none"]
Pool = Literal["avg", "max", "avgmax"]


def _conv_norm(kind: ConvNorm, channels: int, spatial_dims: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels) if spatial_dims == 2 else nn.BatchNorm3d(channels)
    if kind == "group":
        return nn.GroupNorm(math.gcd(8, channels), channels)
    return nn.Identity()


class CNNEncoder(Encoder):
    """Stages of ``conv3×3 → norm → ReLU`` (stride 2 from the second stage), then average pooling.

    ``stem_stride: 2`` makes the first stage downsample as well. On CPU a full-resolution first
    stage dominates the cost of a 3-D net (a ``32³`` volume: about 11× the step time of the same
    widths with a strided stem; ``benchmarks/cnn_stem_stride.py``), so volumes usually want it.

    ``Conv2d`` or ``Conv3d`` is chosen from the modality's spatial dimensions and the input channels
    from its shape, so the same spec entry works for images, depth maps and volumes. The last
    stage's spatial positions are available as tokens through :meth:`forward_tokens`.

    ``pool_grid: k`` average-pools the last stage into ``k`` cells per spatial axis and
    concatenates them (``channels × k^dims`` features) instead of one global average: global
    pooling forgets *where* a feature is, so a finding defined by position (a left- or right-sided
    lesion) needs ``pool_grid`` of at least 2.

    ``pool: max`` takes each cell's maximum instead of its mean, ``pool: avgmax`` both,
    concatenated (twice the features): a mean measures how much of something there is (how many
    lesions), a maximum whether it is there at all and how strongly (one small bright lesion).
    """

    accepts = (ModalityKind.IMAGE2D, ModalityKind.DEPTH, ModalityKind.VOLUME3D)

    def __init__(
        self,
        modality: Modality,
        widths: list[int] = [16, 32, 64],  # noqa: B006 - read-only default, copied below
        out_dim: int | None = None,
        norm: ConvNorm = "batch",
        dropout: float = 0.0,
        pool_grid: int | None = None,
        stem_stride: int = 1,
        pool: Pool = "avg",
    ) -> None:
        super().__init__(modality)
        widths = list(widths)
        if not widths:
            raise ValueError("widths needs at least one stage")
        check_positive("widths", widths)
        check_dropout(dropout)
        check_positive("stem_stride", [stem_stride])
        spatial = modality.spatial_dims
        conv = nn.Conv2d if spatial == 2 else nn.Conv3d
        layers: list[nn.Module] = []
        channels = int(modality.channels or 1)
        for i, width in enumerate(widths):
            layers += [
                conv(
                    channels,
                    width,
                    kernel_size=3,
                    stride=stem_stride if i == 0 else 2,
                    padding=1,
                    bias=norm == "none",
                ),
                _conv_norm(norm, width, spatial),
                nn.ReLU(inplace=True),
            ]
            channels = width
        self.features = nn.Sequential(*layers)
        if pool not in ("avg", "max", "avgmax"):
            raise ValueError(f"pool must be avg, max or avgmax, got {pool!r}")
        if pool_grid is not None:
            check_positive("pool_grid", [pool_grid])
        self.pool = GridPool(pool_grid or 1, pool, spatial)
        pooled_dim = channels * (pool_grid or 1) ** spatial * (2 if pool == "avgmax" else 1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        if out_dim is not None:
            check_positive("out_dim", [out_dim])
            self.proj: nn.Module = nn.Linear(pooled_dim, out_dim)
        else:
            self.proj = nn.Identity()
        # tokens go through proj, sized for one position's channels: not with a grid or avgmax
        tokens = pool_grid is None and pool != "avgmax"
        self._output = FeatureSpec(out_dim or pooled_dim, tokens=tokens)

    @property
    def output(self) -> FeatureSpec:
        return self._output

    def feature_map(self, x: Tensor) -> Tensor:
        """The last stage's activations, ``(B, C, *spatial)``."""
        return self.features(x.float())

    def forward(self, x: Tensor) -> Tensor:
        maps = self.feature_map(x)
        return self.proj(self.dropout(self.pool(maps)))

    def forward_tokens(self, x: Tensor) -> Tensor:
        """One token per spatial position of the last stage: ``(B, positions, dim)``."""
        if not self._output.tokens:
            raise ValueError(
                "cnn with pool_grid or pool: avgmax gives no tokens (its output is pooled cells)"
            )
        tokens = self.feature_map(x).flatten(2).transpose(1, 2)
        return self.proj(self.dropout(tokens))


class GridPool(nn.Module):
    """``(B, C, *spatial)`` → ``(B, C·grid^dims)`` (twice that for ``avgmax``): each of
    ``grid`` cells per axis pooled by mean, max or both; ``grid: 1`` is global pooling."""

    def __init__(self, grid: int, mode: Pool, spatial_dims: int) -> None:
        super().__init__()
        avg = nn.AdaptiveAvgPool2d if spatial_dims == 2 else nn.AdaptiveAvgPool3d
        top = nn.AdaptiveMaxPool2d if spatial_dims == 2 else nn.AdaptiveMaxPool3d
        kinds = {"avg": (avg,), "max": (top,), "avgmax": (avg, top)}[mode]
        self.pools = nn.ModuleList(kind(grid) for kind in kinds)

    def forward(self, maps: Tensor) -> Tensor:
        return torch.cat([pool(maps).flatten(1) for pool in self.pools], dim=1)

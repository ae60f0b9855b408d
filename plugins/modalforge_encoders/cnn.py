"""``cnn``: a small convolutional net for 2-D images, depth maps and 3-D volumes."""

from __future__ import annotations

import math
from typing import Literal

from torch import Tensor, nn

from modalforge.contracts import Encoder, FeatureSpec
from modalforge.modality import Modality, ModalityKind
from modalforge_encoders.layers import check_dropout, check_positive

ConvNorm = Literal["batch", "group", "none"]


def _conv_norm(kind: ConvNorm, channels: int, spatial_dims: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels) if spatial_dims == 2 else nn.BatchNorm3d(channels)
    if kind == "group":
        return nn.GroupNorm(math.gcd(8, channels), channels)
    return nn.Identity()


class CNNEncoder(Encoder):
    """Stages of ``conv3×3 → norm → ReLU`` (stride 2 from the second stage), then average pooling.

    ``Conv2d`` or ``Conv3d`` is chosen from the modality's spatial dimensions and the input channels
    from its shape, so the same spec entry works for images, depth maps and volumes. The last
    stage's spatial positions are available as tokens through :meth:`forward_tokens`.

    ``pool_grid: k`` average-pools the last stage into ``k`` cells per spatial axis and
    concatenates them (``channels × k^dims`` features) instead of one global average: global
    pooling forgets *where* a feature is, so a finding defined by position (a left- or right-sided
    lesion) needs ``pool_grid`` of at least 2.
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
    ) -> None:
        super().__init__(modality)
        widths = list(widths)
        if not widths:
            raise ValueError("widths needs at least one stage")
        check_positive("widths", widths)
        check_dropout(dropout)
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
                    stride=1 if i == 0 else 2,
                    padding=1,
                    bias=norm == "none",
                ),
                _conv_norm(norm, width, spatial),
                nn.ReLU(inplace=True),
            ]
            channels = width
        self.features = nn.Sequential(*layers)
        if pool_grid is not None:
            check_positive("pool_grid", [pool_grid])
            adaptive = nn.AdaptiveAvgPool2d if spatial == 2 else nn.AdaptiveAvgPool3d
            self.pool: nn.Module | None = adaptive(pool_grid)
            pooled_dim = channels * pool_grid**spatial
        else:
            self.pool, pooled_dim = None, channels
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        if out_dim is not None:
            check_positive("out_dim", [out_dim])
            self.proj: nn.Module = nn.Linear(pooled_dim, out_dim)
        else:
            self.proj = nn.Identity()
        # tokens go through proj, sized for one position's channels: not with a grid
        self._output = FeatureSpec(out_dim or pooled_dim, tokens=pool_grid is None)

    @property
    def output(self) -> FeatureSpec:
        return self._output

    def feature_map(self, x: Tensor) -> Tensor:
        """The last stage's activations, ``(B, C, *spatial)``."""
        return self.features(x.float())

    def forward(self, x: Tensor) -> Tensor:
        maps = self.feature_map(x)
        pooled = maps.flatten(2).mean(dim=2) if self.pool is None else self.pool(maps).flatten(1)
        return self.proj(self.dropout(pooled))

    def forward_tokens(self, x: Tensor) -> Tensor:
        """One token per spatial position of the last stage: ``(B, positions, dim)``."""
        if not self._output.tokens:
            raise ValueError("cnn with pool_grid gives no tokens (its output is the grid's cells)")
        tokens = self.feature_map(x).flatten(2).transpose(1, 2)
        return self.proj(self.dropout(tokens))

"""``visual``: a camera's RGB (or depth) observation → features, optionally FiLM-conditioned on
the instruction inside the trunk, pooled to spatial-softmax keypoints or by averaging."""

from __future__ import annotations

import math
from typing import Literal

from torch import Tensor, nn

from modalforge.contracts import Encoder, FeatureSpec
from modalforge.modality import Modality, ModalityKind
from modalforge_robotics.encoders.layers import FiLM, map_readout

VisualPool = Literal["spatial_softmax", "avg"]


class VisualEncoder(Encoder):
    """Stages of ``conv3×3 (stride 2) → GroupNorm → ReLU [→ FiLM]`` over ``(C, H, W)``
    observations, then spatial-softmax keypoints (``2 · num_keypoints`` features: *where* things
    are, what a visuomotor policy needs) or a global average. ``strides`` (default 2 per stage)
    keep a finer last map where keypoints must be precise (a small target far from the camera).

    ``condition_on: [instruction]`` FiLM-modulates every stage by that encoder's features (RT-1
    style, zero-initialised, so training starts from the unconditioned trunk); the pipeline
    builder sizes ``condition_dim``. Frame histories stacked on the channel axis and early RGB-D
    (4 channels) are read as they come: the input channels are the modality's. ``tokens: true``
    also gives the last maps as position-tagged tokens, for token fusions (``token_learner``).
    """

    accepts = (ModalityKind.IMAGE2D, ModalityKind.DEPTH)

    def __init__(
        self,
        modality: Modality,
        widths: list[int] = [32, 64, 64],  # noqa: B006 - read-only default, copied below
        strides: list[int] | None = None,
        pool: VisualPool = "spatial_softmax",
        num_keypoints: int | None = 32,
        out_dim: int | None = None,
        condition_on: list[str] = [],  # noqa: B006 - read-only default, copied below
        condition_dim: int | None = None,
        tokens: bool = False,
    ) -> None:
        super().__init__(modality)
        widths = list(widths)
        if not widths or min(widths) < 1:
            raise ValueError(f"widths must be positive stage widths, got {widths}")
        strides = [2] * len(widths) if strides is None else list(strides)
        if len(strides) != len(widths) or min(strides) < 1:
            raise ValueError(
                f"strides must give each of the {len(widths)} stages a positive stride, got "
                f"{strides}"
            )
        if pool not in ("spatial_softmax", "avg"):
            raise ValueError(f"pool must be spatial_softmax or avg, got {pool!r}")
        self.condition_on = tuple([condition_on] if isinstance(condition_on, str) else condition_on)
        if self.condition_on and not condition_dim:
            raise ValueError(f"condition_on {list(self.condition_on)} needs a condition_dim")
        channels = int(modality.channels or 1)
        self.stages = nn.ModuleList()
        self.films = nn.ModuleList()
        for width, stride in zip(widths, strides, strict=True):
            self.stages.append(
                nn.Sequential(
                    nn.Conv2d(channels, width, 3, stride=stride, padding=1, bias=False),
                    nn.GroupNorm(math.gcd(8, width), width),
                    nn.ReLU(inplace=True),
                )
            )
            if self.condition_on:
                self.films.append(FiLM(int(condition_dim), width))
            channels = width
        self.pool, self.proj, self.tokens, dim = map_readout(
            channels, pool, num_keypoints, out_dim, tokens
        )
        self._output = FeatureSpec(dim, tokens=bool(tokens))

    @property
    def output(self) -> FeatureSpec:
        return self._output

    def feature_map(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        """The last stage's maps ``(B, C, h, w)``, each stage FiLM-modulated by ``condition``."""
        if self.condition_on and condition is None:
            raise ValueError(
                f"this visual encoder is conditioned on {list(self.condition_on)}; call it with "
                "their features (the model does)"
            )
        x = x.float()
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if self.condition_on:
                x = self.films[i](x, condition)
        return x

    def forward(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        return self.proj(self.pool(self.feature_map(x, condition)))

    def forward_tokens(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        """The maps as ``(B, h·w, dim)`` position-tagged tokens (``tokens: true``), for token
        fusions such as ``token_learner``."""
        if self.tokens is None:
            raise NotImplementedError("token output needs tokens: true")
        return self.tokens(self.feature_map(x, condition))

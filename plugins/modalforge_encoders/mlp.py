"""``mlp``: a multilayer perceptron for feature vectors (tabular, low-dimensional state, series)."""

from __future__ import annotations

import math

from torch import Tensor

from modalforge.contracts import Encoder, FeatureSpec
from modalforge.errors import SpecError
from modalforge.modality import Modality, ModalityKind
from modalforge_encoders.layers import VectorNorm, check_dropout, check_positive, mlp


class MLPEncoder(Encoder):
    """MLP over a flat feature vector; time series ``(T, F)`` are flattened to ``T·F`` features."""

    accepts = (ModalityKind.TABULAR, ModalityKind.LOWDIM, ModalityKind.TIMESERIES)

    def __init__(
        self,
        modality: Modality,
        hidden_dims: list[int] = [128],  # noqa: B006 - read-only default, copied below
        out_dim: int = 128,
        dropout: float = 0.0,
        norm: VectorNorm = "layer",
    ) -> None:
        super().__init__(modality)
        if any(d is None for d in modality.shape):
            raise SpecError(
                f"model.encoders.{modality.name}",
                f"mlp needs a fixed input size, but {modality.describe()} has a variable axis",
                hint="pad or resample the data to a fixed length, or pick a sequence encoder",
            )
        check_positive("hidden_dims", list(hidden_dims))
        check_positive("out_dim", [out_dim])
        check_dropout(dropout)
        self.in_dim = math.prod(modality.shape)
        self.net = mlp(self.in_dim, list(hidden_dims), out_dim, dropout=dropout, norm=norm)
        self._output = FeatureSpec(out_dim)

    @property
    def output(self) -> FeatureSpec:
        return self._output

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.float().flatten(1))

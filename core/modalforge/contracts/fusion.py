"""Fusion contract: several modalities' features in, one representation out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

from torch import Tensor, nn

from modalforge.contracts.features import FeatureSpec


class Fusion(nn.Module, ABC):
    """Combines per-modality features into one representation.

    Built from the encoders' declared outputs (``in_features``, keyed by modality name); works
    for two or more modalities. ``masks`` maps a modality name to a ``(B,)`` bool tensor, ``True``
    where the modality is present; a fusion must give a finite result when some are absent.
    """

    def __init__(self, in_features: Mapping[str, FeatureSpec]) -> None:
        super().__init__()
        if not in_features:
            raise ValueError("a fusion needs at least one input modality")
        self.in_features = dict(in_features)

    @property
    def output(self) -> FeatureSpec:
        """What :meth:`forward` returns: set ``self._output`` in ``__init__``, or override this."""
        try:
            return self._output
        except AttributeError:
            raise NotImplementedError(
                f"{type(self).__name__} declares no output: set self._output = FeatureSpec(...) "
                "in __init__"
            ) from None

    @abstractmethod
    def forward(
        self, features: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        """Per-modality features (pooled ``(B, D)`` or tokens ``(B, T, D)``) → ``(B, out)``."""

"""What an encoder or fusion produces, declared so that downstream components size themselves."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FeatureSpec:
    """An output: a pooled vector of ``dim`` and, if ``tokens``, a ``(B, T, dim)`` sequence."""

    dim: int
    tokens: bool = False

    def __post_init__(self) -> None:
        if self.dim <= 0:
            raise ValueError(f"feature dim must be positive, got {self.dim}")

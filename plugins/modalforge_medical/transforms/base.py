"""The wrapper every MONAI step shares: one MONAI *dictionary* transform applied to one sample.

A step calls its MONAI transform on ``{modality name: sample}``, so a ``MetaTensor``'s metadata
(the affine, the original channel layout) flows from one step to the next; the pipeline turns the
last step's output into a plain tensor before batching. Random steps seed MONAI's NumPy state
from ``torch``'s generator on every call, so augmentation follows the engine's per-worker torch
seeding: the same seed gives the same samples, another seed other ones.
MONAI is imported when a step is built, never when the plugin loads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

import torch

from modalforge.contracts import Transform
from modalforge.deps import require
from modalforge.modality import Modality, ModalityKind

#: the modality kinds the MONAI steps work on (channel-first tensors with 2 or 3 spatial axes)
SPATIAL_KINDS = (ModalityKind.VOLUME3D, ModalityKind.IMAGE2D)
_SEED_BOUND = 2**31 - 1  # NumPy's RandomState takes seeds below 2**32; stay in int32


def monai_transforms() -> Any:  # noqa: ANN401 - the monai.transforms module
    return require("monai.transforms", package="monai")


class MonaiStep(Transform):
    """One MONAI dictionary transform (``op``), keyed by the modality's name."""

    accepts = SPATIAL_KINDS
    raw = False
    #: the MONAI dictionary transform this step wraps (its class name in ``monai.transforms``)
    monai_name: ClassVar[str] = ""
    #: reads the sample's metadata (a MetaTensor's affine), so ``data.cache`` refuses it after
    #: the cached prefix, which keeps plain tensors
    uses_metadata: ClassVar[bool] = False

    def __init__(self, modality: Modality, **kwargs: Any) -> None:
        super().__init__(modality)
        self.key = modality.name
        self.kwargs = kwargs
        self.op = getattr(monai_transforms(), self.monai_name)(keys=[self.key], **kwargs)

    def __call__(self, sample: Any) -> Any:  # noqa: ANN401 - a tensor or MetaTensor
        if self.random:
            self.op.set_random_state(seed=int(torch.randint(_SEED_BOUND, ()).item()))
        return self.op({self.key: sample})[self.key]

    def cache_token(self) -> str:
        """What besides the spec's parameters decides the output: the MONAI version."""
        import monai

        return f"monai {monai.__version__}"

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"{type(self).__name__}({self.monai_name}({args}))"


# ----------------------------------------------------------------------------- helpers
def per_axis(
    value: float | Sequence[float], modality: Modality, field: str, *, positive: bool = True
) -> tuple[float, ...]:
    """``value`` for each spatial axis of ``modality``: one number for all, or one per axis."""
    dims = modality.spatial_dims
    values = (value,) * dims if isinstance(value, (int, float)) else tuple(value)
    if len(values) != dims:
        raise ValueError(
            f"{field}: {len(values)} values for the {dims} spatial axes of "
            f"{modality.describe()}; give one value for all axes, or {dims}"
        )
    if positive and any(v <= 0 for v in values):
        raise ValueError(f"{field} must be positive, got {list(values)}")
    return values


def per_axis_int(
    value: int | Sequence[int], modality: Modality, field: str, *, minimum: int = 1
) -> tuple[int, ...]:
    values = tuple(int(v) for v in per_axis(value, modality, field, positive=False))
    if any(v < minimum for v in values):
        raise ValueError(f"{field} must be {minimum} or more on every axis, got {list(values)}")
    return values


def prob(p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"prob must be in [0, 1], got {p}")
    return p


def interp_mode(mode: str, modality: Modality) -> str:
    """Check a resampling mode against the number of spatial axes (``trilinear`` is 3-D only)."""
    if mode == "trilinear" and modality.spatial_dims != 3:
        raise ValueError(f"mode 'trilinear' needs a volume; {modality.describe()} has 2 axes")
    return mode


def with_spatial(modality: Modality, spatial: Sequence[int | None]) -> Modality:
    """``modality`` with new spatial sizes (``None``: decided by each sample's data)."""
    return replace(modality, shape=(modality.shape[0], *spatial))


def unknown_spatial(modality: Modality) -> Modality:
    return with_spatial(modality, (None,) * modality.spatial_dims)


def spatial_of(modality: Modality) -> tuple[int | None, ...]:
    return tuple(modality.shape[1:])

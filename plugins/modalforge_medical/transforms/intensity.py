"""Deterministic intensity steps: range scaling, CT windowing, min–max scaling, z-scoring."""

from __future__ import annotations

from modalforge.modality import Modality
from modalforge_medical.transforms.base import MonaiStep


class ScaleIntensityRange(MonaiStep):
    """Map ``[a_min, a_max]`` linearly onto ``[b_min, b_max]``, clipping outside if ``clip``."""

    monai_name = "ScaleIntensityRanged"

    def __init__(
        self,
        modality: Modality,
        a_min: float,
        a_max: float,
        b_min: float = 0.0,
        b_max: float = 1.0,
        clip: bool = False,
    ) -> None:
        if a_min == a_max:
            raise ValueError(f"a_min and a_max must differ, both are {a_min}")
        super().__init__(modality, a_min=a_min, a_max=a_max, b_min=b_min, b_max=b_max, clip=clip)


class CTWindow(ScaleIntensityRange):
    """A CT window in Hounsfield units: ``level ± width / 2`` onto ``[b_min, b_max]``, clipped
    (e.g. soft tissue 40/400, lung -600/1500, bone 400/1800, brain 40/80)."""

    def __init__(
        self,
        modality: Modality,
        level: float = 40.0,
        width: float = 400.0,
        b_min: float = 0.0,
        b_max: float = 1.0,
    ) -> None:
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
        half = width / 2
        super().__init__(
            modality, a_min=level - half, a_max=level + half, b_min=b_min, b_max=b_max, clip=True
        )


class ScaleIntensity(MonaiStep):
    """Min–max scale each sample (or each channel) to ``[minv, maxv]``."""

    monai_name = "ScaleIntensityd"

    def __init__(
        self, modality: Modality, minv: float = 0.0, maxv: float = 1.0, channel_wise: bool = False
    ) -> None:
        if minv >= maxv:
            raise ValueError(f"minv must be below maxv, got {minv} and {maxv}")
        super().__init__(modality, minv=minv, maxv=maxv, channel_wise=channel_wise)


class NormalizeIntensity(MonaiStep):
    """``(x - subtrahend) / divisor``, by default each sample's own mean and standard deviation
    (over its non-zero voxels with ``nonzero``, per channel with ``channel_wise``)."""

    monai_name = "NormalizeIntensityd"

    def __init__(
        self,
        modality: Modality,
        subtrahend: float | None = None,
        divisor: float | None = None,
        nonzero: bool = False,
        channel_wise: bool = False,
    ) -> None:
        if divisor is not None and divisor == 0:
            raise ValueError("divisor must not be 0")
        super().__init__(
            modality,
            subtrahend=subtrahend,
            divisor=divisor,
            nonzero=nonzero,
            channel_wise=channel_wise,
        )

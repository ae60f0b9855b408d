"""Deterministic spatial steps: orientation, resampling to a voxel spacing, foreground crop,
resizing, padding and cropping to a fixed size, and the channel-first layout.

Each says what it does to the modality's shape: a step to a fixed size sets it (so the encoder
is sized from it); orientation, spacing and the foreground crop make it depend on each sample's
data (``None`` sizes) until a fixed-size step follows.
"""

from __future__ import annotations

from typing import Literal

from modalforge.modality import Modality
from modalforge_medical.transforms.base import (
    MonaiStep,
    interp_mode,
    per_axis,
    per_axis_int,
    spatial_of,
    unknown_spatial,
    with_spatial,
)

_AXES = (("L", "R"), ("P", "A"), ("I", "S"))  # MONAI's world-axis labels (RAS+ convention)
PadMode = Literal["constant", "reflect", "replicate", "circular"]
PadMethod = Literal["symmetric", "end"]


class Orientation(MonaiStep):
    """Reorder and flip the spatial axes so that they point along ``axcodes`` (e.g. ``RAS``),
    using the sample's affine; the affine is updated for the steps after it (``spacing``)."""

    monai_name = "Orientationd"
    uses_metadata = True  # reads the affine (data.cache does not keep it)

    def __init__(self, modality: Modality, axcodes: str = "RAS") -> None:
        dims = modality.spatial_dims
        codes = axcodes.upper()
        axes = [next((i for i, pair in enumerate(_AXES) if c in pair), None) for c in codes]
        if len(codes) != dims or None in axes or len(set(axes)) != dims:
            raise ValueError(
                f"axcodes: {axcodes!r} does not name {dims} distinct axes for "
                f"{modality.describe()}; use one letter of L/R, P/A, I/S per axis, e.g. "
                f"{'RAS' if dims == 3 else 'RA'}"
            )
        super().__init__(modality, axcodes=codes, labels=_AXES)

    def output(self) -> Modality:
        spatial = spatial_of(self.modality)
        if None not in spatial and len(set(spatial)) == 1:  # any permutation keeps a cube
            return self.modality
        return unknown_spatial(self.modality)


class Spacing(MonaiStep):
    """Resample to ``pixdim`` (mm per voxel, one value or one per axis) from the sample's affine;
    the size then depends on each sample's extent."""

    monai_name = "Spacingd"
    uses_metadata = True  # reads the affine (data.cache does not keep it)

    def __init__(
        self,
        modality: Modality,
        pixdim: float | tuple[float, ...] = 1.0,
        mode: Literal["bilinear", "nearest", "bicubic"] = "bilinear",
        padding_mode: Literal["border", "zeros", "reflection"] = "border",
        align_corners: bool = False,
    ) -> None:
        super().__init__(
            modality,
            pixdim=per_axis(pixdim, modality, "pixdim"),
            mode=mode,
            padding_mode=padding_mode,
            align_corners=align_corners,
        )

    def output(self) -> Modality:
        return unknown_spatial(self.modality)


class _Above:
    """``x > threshold``, picklable for data-loader workers (a lambda is not)."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def __call__(self, x):  # noqa: ANN001, ANN204
        return x > self.threshold


class CropForeground(MonaiStep):
    """Crop to the bounding box of the voxels above ``threshold`` (plus ``margin``); the size
    then depends on each sample."""

    monai_name = "CropForegroundd"

    def __init__(
        self,
        modality: Modality,
        threshold: float = 0.0,
        margin: int | tuple[int, ...] = 0,
        k_divisible: int | tuple[int, ...] = 1,
        allow_smaller: bool = False,
    ) -> None:
        super().__init__(
            modality,
            source_key=modality.name,
            select_fn=_Above(threshold),
            margin=per_axis_int(margin, modality, "margin", minimum=0),
            k_divisible=per_axis_int(k_divisible, modality, "k_divisible"),
            allow_smaller=allow_smaller,
            start_coord_key=None,
            end_coord_key=None,
        )

    def output(self) -> Modality:
        return unknown_spatial(self.modality)


class SpatialResize(MonaiStep):
    """Resize (interpolate) to ``spatial_size`` (one size for all axes, or one per axis)."""

    monai_name = "Resized"

    def __init__(
        self,
        modality: Modality,
        spatial_size: int | tuple[int, ...],
        mode: Literal["area", "nearest", "nearest-exact", "bilinear", "trilinear", "bicubic"] = (
            "area"
        ),
        anti_aliasing: bool = False,
    ) -> None:
        self.size = per_axis_int(spatial_size, modality, "spatial_size")
        super().__init__(
            modality,
            spatial_size=self.size,
            mode=interp_mode(mode, modality),
            anti_aliasing=anti_aliasing,
        )

    def output(self) -> Modality:
        return with_spatial(self.modality, self.size)


class SpatialPad(MonaiStep):
    """Pad every axis shorter than ``spatial_size`` up to it (longer axes stay as they are)."""

    monai_name = "SpatialPadd"

    def __init__(
        self,
        modality: Modality,
        spatial_size: int | tuple[int, ...],
        method: PadMethod = "symmetric",
        mode: PadMode = "constant",
    ) -> None:
        self.size = per_axis_int(spatial_size, modality, "spatial_size")
        super().__init__(modality, spatial_size=self.size, method=method, mode=mode)

    def output(self) -> Modality:
        spatial = spatial_of(self.modality)
        return with_spatial(
            self.modality,
            [None if d is None else max(d, s) for d, s in zip(spatial, self.size, strict=True)],
        )


class ResizeWithPadOrCrop(MonaiStep):
    """Pad or centre-crop every axis to exactly ``spatial_size`` (no interpolation)."""

    monai_name = "ResizeWithPadOrCropd"

    def __init__(
        self,
        modality: Modality,
        spatial_size: int | tuple[int, ...],
        method: PadMethod = "symmetric",
        mode: PadMode = "constant",
    ) -> None:
        self.size = per_axis_int(spatial_size, modality, "spatial_size")
        super().__init__(modality, spatial_size=self.size, method=method, mode=mode)

    def output(self) -> Modality:
        return with_spatial(self.modality, self.size)


class CenterSpatialCrop(MonaiStep):
    """Crop the central ``roi_size`` (an axis already shorter stays as it is: follow with
    ``spatial_pad`` or use ``resize_with_pad_or_crop`` for an exact size)."""

    monai_name = "CenterSpatialCropd"

    def __init__(self, modality: Modality, roi_size: int | tuple[int, ...]) -> None:
        self.size = per_axis_int(roi_size, modality, "roi_size")
        super().__init__(modality, roi_size=self.size)

    def output(self) -> Modality:
        spatial = spatial_of(self.modality)
        return with_spatial(
            self.modality,
            [None if d is None else min(d, s) for d, s in zip(spatial, self.size, strict=True)],
        )


class EnsureChannelFirst(MonaiStep):
    """Move the channel axis first (``channel_dim``), or add one (``no_channel``); without
    ``channel_dim`` MONAI reads the layout from the sample's metadata (a MetaTensor's)."""

    monai_name = "EnsureChannelFirstd"
    uses_metadata = True  # reads the channel layout from the metadata

    def __init__(
        self, modality: Modality, channel_dim: int | Literal["no_channel"] | None = None
    ) -> None:
        super().__init__(modality, channel_dim=channel_dim)

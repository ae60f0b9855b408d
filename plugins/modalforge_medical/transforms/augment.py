"""Random MONAI steps for ``data.transforms.train``: flips, rotations, affine warps, random
crops, intensity scaling and shifting, Gaussian noise and smoothing.

Augmentation keeps the modality's shape (the pipeline refuses a ``train`` chain that changes
it), so ``rand_spatial_crop`` resizes its crop back to the input's size (a random zoom, like
``random_resized_crop`` for 2-D images) and ``rand_rotate90`` needs equal sizes on the two axes
it turns. Angles are in radians, as in MONAI.
"""

from __future__ import annotations

from typing import Any, Literal

from modalforge.modality import Modality
from modalforge_medical.transforms.base import (
    MonaiStep,
    interp_mode,
    monai_transforms,
    per_axis_int,
    prob,
    spatial_of,
    unknown_spatial,
)

Range = float | tuple[float, float]


class RandomStep(MonaiStep):
    random = True


class RandFlip(RandomStep):
    """Flip along ``spatial_axis`` (default: all spatial axes) with probability ``prob``."""

    monai_name = "RandFlipd"

    def __init__(
        self,
        modality: Modality,
        prob: float = 0.1,
        spatial_axis: int | tuple[int, ...] | None = None,
    ) -> None:
        axes = (spatial_axis,) if isinstance(spatial_axis, int) else spatial_axis
        _check_axes(axes, modality, "spatial_axis")
        super().__init__(modality, prob=_p(prob), spatial_axis=spatial_axis)


class RandRotate90(RandomStep):
    """Rotate by k × 90° (k from 1 to ``max_k``) in the plane of ``spatial_axes``."""

    monai_name = "RandRotate90d"

    def __init__(
        self,
        modality: Modality,
        prob: float = 0.1,
        max_k: int = 3,
        spatial_axes: tuple[int, int] = (0, 1),
    ) -> None:
        _check_axes(spatial_axes, modality, "spatial_axes")
        if spatial_axes[0] == spatial_axes[1]:
            raise ValueError(f"spatial_axes must be two different axes, got {list(spatial_axes)}")
        if max_k < 1:
            raise ValueError(f"max_k must be 1 or more, got {max_k}")
        self.axes = spatial_axes
        super().__init__(modality, prob=_p(prob), max_k=max_k, spatial_axes=spatial_axes)

    def output(self) -> Modality:
        spatial = spatial_of(self.modality)
        a, b = (spatial[i] for i in self.axes)
        if a is not None and a == b:
            return self.modality
        return unknown_spatial(self.modality)  # a turn swaps the two sizes


class RandRotate(RandomStep):
    """Rotate by angles drawn from ``range_x`` (and for volumes ``range_y``, ``range_z``), in
    radians: one number r means ``[-r, r]``; the size is kept."""

    monai_name = "RandRotated"

    def __init__(
        self,
        modality: Modality,
        range_x: Range = 0.0,
        range_y: Range = 0.0,
        range_z: Range = 0.0,
        prob: float = 0.1,
        mode: Literal["bilinear", "nearest"] = "bilinear",
        padding_mode: Literal["border", "zeros", "reflection"] = "border",
    ) -> None:
        if modality.spatial_dims == 2 and (range_y != 0.0 or range_z != 0.0):
            raise ValueError(
                f"range_y/range_z: {modality.describe()} is 2-D and turns in one plane; set "
                "range_x only"
            )
        super().__init__(
            modality,
            range_x=range_x,
            range_y=range_y,
            range_z=range_z,
            prob=_p(prob),
            keep_size=True,
            mode=mode,
            padding_mode=padding_mode,
        )


class RandAffine(RandomStep):
    """A random affine warp (rotation in radians, scaling as a fraction, translation in voxels,
    per axis or one value for all), resampled at the input's size."""

    monai_name = "RandAffined"

    def __init__(
        self,
        modality: Modality,
        prob: float = 0.1,
        rotate_range: float | tuple[float, ...] | None = None,
        scale_range: float | tuple[float, ...] | None = None,
        translate_range: float | tuple[float, ...] | None = None,
        mode: Literal["bilinear", "nearest"] = "bilinear",
        padding_mode: Literal["border", "zeros", "reflection"] = "reflection",
    ) -> None:
        dims = modality.spatial_dims
        ranges = {"rotate_range": rotate_range, "scale_range": scale_range}
        ranges["translate_range"] = translate_range
        for name, value in ranges.items():
            limit = (1 if dims == 2 else 3) if name == "rotate_range" else dims
            if isinstance(value, tuple) and len(value) not in (1, limit):
                raise ValueError(
                    f"{name}: {len(value)} values for {modality.describe()}; give one value or "
                    f"{limit}"
                )
        super().__init__(
            modality,
            prob=_p(prob),
            rotate_range=rotate_range,
            scale_range=scale_range,
            translate_range=translate_range,
            mode=mode,
            padding_mode=padding_mode,
        )


class RandSpatialCrop(RandomStep):
    """Crop a random box of ``roi_size`` (up to ``max_roi_size`` with a random size), then
    resize it back to the input's size: a random zoom that keeps the shape."""

    monai_name = "RandSpatialCropd"

    def __init__(
        self,
        modality: Modality,
        roi_size: int | tuple[int, ...],
        max_roi_size: int | tuple[int, ...] | None = None,
        random_center: bool = True,
        mode: Literal["area", "nearest", "bilinear", "trilinear"] = "area",
    ) -> None:
        spatial = spatial_of(modality)
        if None in spatial:
            raise ValueError(
                f"{modality.describe()} has no fixed size to resize the crop back to; put a "
                "fixed-size step (resize_with_pad_or_crop, spatial_resize) before it"
            )
        roi = per_axis_int(roi_size, modality, "roi_size")
        top = None if max_roi_size is None else per_axis_int(max_roi_size, modality, "max_roi_size")
        for name, size in (("roi_size", roi), ("max_roi_size", top)):
            if size is not None and any(s > d for s, d in zip(size, spatial, strict=True)):
                raise ValueError(
                    f"{name} {list(size)} is larger than {modality.describe()}'s spatial size"
                )
        if top is not None and any(a > b for a, b in zip(roi, top, strict=True)):
            raise ValueError(f"max_roi_size {list(top)} is below roi_size {list(roi)}")
        super().__init__(
            modality,
            roi_size=roi,
            max_roi_size=top,
            random_center=random_center,
            random_size=top is not None,
        )
        self.back = monai_transforms().Resized(
            keys=[self.key], spatial_size=spatial, mode=interp_mode(mode, modality)
        )

    def __call__(self, sample: Any) -> Any:  # noqa: ANN401
        return self.back({self.key: super().__call__(sample)})[self.key]


class RandScaleIntensity(RandomStep):
    """``x * (1 + f)`` with ``f`` drawn from ``factors`` (one number r: ``[-r, r]``)."""

    monai_name = "RandScaleIntensityd"

    def __init__(
        self,
        modality: Modality,
        factors: Range = 0.1,
        prob: float = 0.1,
        channel_wise: bool = False,
    ) -> None:
        super().__init__(modality, factors=factors, prob=_p(prob), channel_wise=channel_wise)


class RandShiftIntensity(RandomStep):
    """``x + o`` with ``o`` drawn from ``offsets`` (one number r: ``[-r, r]``)."""

    monai_name = "RandShiftIntensityd"

    def __init__(
        self,
        modality: Modality,
        offsets: Range = 0.1,
        prob: float = 0.1,
        channel_wise: bool = False,
    ) -> None:
        super().__init__(modality, offsets=offsets, prob=_p(prob), channel_wise=channel_wise)


class RandGaussianNoise(RandomStep):
    """Add Gaussian noise of ``mean`` and standard deviation ``std`` (drawn from ``[0, std]``
    with ``sample_std``)."""

    monai_name = "RandGaussianNoised"

    def __init__(
        self,
        modality: Modality,
        prob: float = 0.1,
        mean: float = 0.0,
        std: float = 0.1,
        sample_std: bool = True,
    ) -> None:
        if std < 0:
            raise ValueError(f"std must be 0 or more, got {std}")
        super().__init__(modality, prob=_p(prob), mean=mean, std=std, sample_std=sample_std)


class RandGaussianSmooth(RandomStep):
    """Gaussian smoothing with a per-axis sigma drawn from ``sigma_x`` / ``sigma_y`` /
    ``sigma_z`` (in voxels; ``sigma_z`` is ignored for 2-D images)."""

    monai_name = "RandGaussianSmoothd"

    def __init__(
        self,
        modality: Modality,
        sigma_x: tuple[float, float] = (0.25, 1.5),
        sigma_y: tuple[float, float] = (0.25, 1.5),
        sigma_z: tuple[float, float] = (0.25, 1.5),
        prob: float = 0.1,
    ) -> None:
        for name, (low, high) in (("sigma_x", sigma_x), ("sigma_y", sigma_y), ("sigma_z", sigma_z)):
            if not 0 <= low <= high:
                raise ValueError(f"{name} must satisfy 0 <= low <= high, got {[low, high]}")
        super().__init__(modality, sigma_x=sigma_x, sigma_y=sigma_y, sigma_z=sigma_z, prob=_p(prob))


def _p(p: float) -> float:
    return prob(p)


def _check_axes(axes: tuple[int, ...] | None, modality: Modality, field: str) -> None:
    dims = modality.spatial_dims
    if axes is not None and any(not 0 <= a < dims for a in axes):
        raise ValueError(
            f"{field}: {list(axes)} names an axis outside the {dims} spatial axes (0 to "
            f"{dims - 1}) of {modality.describe()}"
        )

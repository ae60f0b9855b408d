"""MONAI dictionary transforms by name: an allow-list whose typed constructors are the spec
schema (never an import path). See ``docs/data.md`` for the table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge_medical.transforms import augment, intensity, spatial

if TYPE_CHECKING:
    from modalforge.registry import Registrar

__all__ = ["AUGMENT", "PREPROCESS", "register"]

PREPROCESS = {
    "ensure_channel_first": spatial.EnsureChannelFirst,
    "orientation": spatial.Orientation,
    "spacing": spatial.Spacing,
    "crop_foreground": spatial.CropForeground,
    "spatial_resize": spatial.SpatialResize,
    "spatial_pad": spatial.SpatialPad,
    "resize_with_pad_or_crop": spatial.ResizeWithPadOrCrop,
    "center_spatial_crop": spatial.CenterSpatialCrop,
    "scale_intensity_range": intensity.ScaleIntensityRange,
    "ct_window": intensity.CTWindow,
    "scale_intensity": intensity.ScaleIntensity,
    "normalize_intensity": intensity.NormalizeIntensity,
}
AUGMENT = {
    "rand_flip": augment.RandFlip,
    "rand_rotate90": augment.RandRotate90,
    "rand_rotate": augment.RandRotate,
    "rand_affine": augment.RandAffine,
    "rand_spatial_crop": augment.RandSpatialCrop,
    "rand_scale_intensity": augment.RandScaleIntensity,
    "rand_shift_intensity": augment.RandShiftIntensity,
    "rand_gaussian_noise": augment.RandGaussianNoise,
    "rand_gaussian_smooth": augment.RandGaussianSmooth,
}


def register(registry: Registrar) -> None:
    """Register every MONAI step as a ``transform`` (tags ``monai`` and ``medical``)."""
    for group, tag in ((PREPROCESS, "preprocess"), (AUGMENT, "augment")):
        for name, factory in group.items():
            registry.transform(name, factory, tags=("monai", "medical", tag))

"""Readers of the medical domain: the ``volume`` column loader (NIfTI files and DICOM series
through MONAI's readers), with patient-identifying header fields kept out by an allow-list.

2-D X-ray-style PNG/JPEG images need nothing new: the ``image`` loader with ``mode: L``.
MONAI, nibabel and pydicom are imported when a volume is read, never at plugin import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge_medical.readers.privacy import SAFE_META_KEYS
from modalforge_medical.readers.volume import VolumeColumn

if TYPE_CHECKING:
    from modalforge.registry import Registrar

__all__ = ["SAFE_META_KEYS", "VolumeColumn", "register"]


def register(registry: Registrar) -> None:
    """Register the ``volume`` column loader of the ``manifest`` reader."""
    registry.loader("volume", VolumeColumn, tags=("volume3d", "image2d", "file", "medical"))

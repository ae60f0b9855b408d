"""Volume headers read without the voxels: a NIfTI file's header, a DICOM series' slice headers.

The ``volume`` loader checks every manifest row with these before training starts: the file
exists, it is 2-D or 3-D as the spec says, a DICOM folder holds one complete series. The shape,
spacing and orientation are those MONAI's ``LoadImage`` will give (channel first, the file's
voxel axes, a RAS affine), computed the same way from the header, so that the modality can be
declared before any voxel is read. No patient-identifying field is read into these headers.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from modalforge.deps import require

Format = Literal["nifti", "dicom"]
NIFTI_SUFFIXES = (".nii", ".nii.gz")
DICOM_SUFFIXES = (".dcm", ".dicom")

# The only DICOM attributes read from slice headers (pydicom ``specific_tags``): geometry,
# the series identity (compared, never kept) and the modality code.
DICOM_TAGS = (
    "SeriesInstanceUID",
    "InstanceNumber",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "Rows",
    "Columns",
    "SamplesPerPixel",
    "NumberOfFrames",
    "Modality",
)
_MODALITY_CODE = re.compile(r"^[A-Z0-9]{1,16}$")  # a DICOM CS code such as CT, MR, CR, DX


@dataclass(frozen=True)
class VolumeHeader:
    """What a file will load as: ``spatial`` (the spatial shape, channel excluded), ``channels``,
    ``spacing`` (per spatial axis, from the affine), ``orientation`` (axis codes such as
    ``RAS``), and ``modality`` (the DICOM modality code, ``None`` for NIfTI)."""

    format: Format
    spatial: tuple[int, ...]
    channels: int
    spacing: tuple[float, ...]
    orientation: str
    modality: str | None = None

    @property
    def spatial_dims(self) -> int:
        """2 for a single slice (a trailing spatial axis of size 1 counts as none), else 3."""
        return 2 if len(self.spatial) == 2 or self.spatial[2] == 1 else 3


def file_format(path: str, reader: str) -> Format:
    """The format ``reader`` (``auto``, ``nibabel``, ``pydicom``) reads ``path`` as; a
    ``ValueError`` saying why when ``auto`` cannot tell."""
    if reader == "nibabel":
        return "nifti"
    if reader == "pydicom":
        return "dicom"
    name = path.lower()
    if os.path.isdir(path) or name.endswith(DICOM_SUFFIXES):
        return "dicom"
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    pydicom = require("pydicom", extra="medical")
    if pydicom.misc.is_dicom(path):
        return "dicom"
    raise ValueError(
        "is neither NIfTI (.nii, .nii.gz) nor DICOM (a .dcm file, a file with the DICM "
        "preamble, or a series folder)"
    )


def read_header(path: str, fmt: Format) -> VolumeHeader:
    """The header of ``path``; a ``ValueError`` (or ``OSError``) saying what is wrong."""
    return nifti_header(path) if fmt == "nifti" else dicom_header(path)


def nifti_header(path: str) -> VolumeHeader:
    """A NIfTI file's header (nibabel reads the header only; the voxels stay on disk)."""
    if os.path.isdir(path):
        raise ValueError("is a folder, not a NIfTI file (DICOM series folders need reader: auto)")
    nib = require("nibabel", extra="medical")
    try:
        image = nib.load(path)
    except nib.filebasedimages.ImageFileError as exc:
        raise ValueError(f"is not a readable NIfTI file ({exc})") from None
    shape = tuple(int(d) for d in image.shape)
    if len(shape) < 2 or len(shape) > 4:
        raise ValueError(
            f"has {len(shape)} dimensions {shape}; a volume has 3 (or 4 with channels last), "
            "an image 2"
        )
    spatial = shape[: min(len(shape), 3)]
    channels = shape[3] if len(shape) == 4 else 1
    affine = np.asarray(image.affine, dtype=np.float64)
    return VolumeHeader(
        "nifti", spatial, channels, _spacing(affine, len(spatial)), orientation_code(affine)
    )


def dicom_header(path: str) -> VolumeHeader:
    """One DICOM file, or a folder holding one complete series: checked slice by slice."""
    pydicom = require("pydicom", extra="medical")
    files = series_files(path) if os.path.isdir(path) else [path]
    slices = []
    for file in files:
        try:
            slices.append(
                pydicom.dcmread(file, stop_before_pixels=True, specific_tags=list(DICOM_TAGS))
            )
        except pydicom.errors.InvalidDicomError as exc:
            raise ValueError(f"holds {Path(file).name}, which is not DICOM ({exc})") from None
    for ds in slices:
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            raise ValueError(
                "holds a multi-frame DICOM file; only single-frame slices are read "
                "(convert the series to NIfTI, e.g. with dcm2niix)"
            )
        if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
            raise ValueError("holds colour (multi-sample) DICOM pixels; a scan has one sample")
    modality = _modality(slices[0])
    if len(slices) == 1:
        ds = slices[0]
        affine = dicom_affine(ds, ds, 1)
        spatial = (int(ds.Columns), int(ds.Rows))
        return VolumeHeader(
            "dicom", spatial, 1, _spacing(affine, 2), orientation_code(affine), modality
        )
    ordered = check_series(slices)
    first, last = ordered[0], ordered[-1]
    affine = dicom_affine(first, last, len(ordered))
    spatial = (int(first.Columns), int(first.Rows), len(ordered))
    return VolumeHeader(
        "dicom", spatial, 1, _spacing(affine, 3), orientation_code(affine), modality
    )


def series_files(folder: str) -> list[str]:
    """The DICOM files of a series folder, as MONAI's ``PydicomReader`` lists them (every file
    not starting with a dot that has the DICM preamble); other files are ignored."""
    pydicom = require("pydicom", extra="medical")
    entries = sorted(e for e in os.listdir(folder) if not e.startswith("."))
    subfolders = [e for e in entries if os.path.isdir(os.path.join(folder, e))]
    if subfolders:
        raise ValueError(
            f"holds {len(subfolders)} subfolder(s) (such as {subfolders[0]!r}); a series folder "
            "holds the slice files of one series: give each series its own row"
        )
    files = [os.path.join(folder, e) for e in entries]
    dicom = [f for f in files if pydicom.misc.is_dicom(f)]
    if not dicom:
        raise ValueError(f"holds no DICOM file (of {len(files)} files, none has the DICM preamble)")
    return dicom


def check_series(slices: list[Any]) -> list[Any]:
    """The slices of one series in ``InstanceNumber`` order (the order MONAI stacks them), after
    checking that they are one series, of one size and orientation, with no slice missing."""
    n = len(slices)
    series = Counter(str(ds.get("SeriesInstanceUID", "")) for ds in slices)
    if len(series) > 1:
        counts = " + ".join(str(c) for c in sorted(series.values(), reverse=True))
        raise ValueError(
            f"mixes {len(series)} DICOM series ({counts} slices, by SeriesInstanceUID); "
            "put each series in its own folder and give each its own manifest row"
        )
    unnumbered = sum("InstanceNumber" not in ds or ds.InstanceNumber is None for ds in slices)
    if unnumbered:
        raise ValueError(
            f"has {unnumbered} of {n} slices without InstanceNumber, so their order is unknown"
        )
    ordered = sorted(slices, key=lambda ds: int(ds.InstanceNumber))
    numbers = [int(ds.InstanceNumber) for ds in ordered]
    dupes = sorted(k for k, c in Counter(numbers).items() if c > 1)
    if dupes:
        raise ValueError(f"has several slices with InstanceNumber {dupes[0]} ({len(dupes)} such)")
    jumps = [(a, b) for a, b in zip(numbers, numbers[1:], strict=False) if b != a + 1]
    if jumps:
        a, b = jumps[0]
        raise ValueError(
            f"is missing slices: InstanceNumber jumps from {a} to {b} ({len(jumps)} gap(s) in "
            f"{n} slices); add the missing files, or renumber a deliberately partial series"
        )
    sizes = Counter((int(ds.Rows), int(ds.Columns)) for ds in ordered)
    if len(sizes) > 1:
        raise ValueError(f"has slices of {len(sizes)} different sizes (rows × columns)")
    for name in ("ImagePositionPatient", "ImageOrientationPatient"):
        if any(name not in ds for ds in ordered):
            raise ValueError(f"has slices without {name}, so the slices cannot be placed")
    orientations = {tuple(round(float(v), 4) for v in ds.ImageOrientationPatient) for ds in slices}
    if len(orientations) > 1:
        raise ValueError("has slices of different orientations (ImageOrientationPatient)")
    _check_positions(ordered, numbers)
    return ordered


def _check_positions(ordered: list[Any], numbers: list[int]) -> None:
    """Slice positions along the slice normal step evenly, in one direction."""
    iop = np.asarray([float(v) for v in ordered[0].ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    z = np.asarray([np.dot(normal, [float(v) for v in ds.ImagePositionPatient]) for ds in ordered])
    steps = np.diff(z)
    if np.any(np.abs(steps) < 1e-4):
        k = int(np.argmax(np.abs(steps) < 1e-4))
        raise ValueError(
            f"has two slices at the same position (InstanceNumber {numbers[k]} and "
            f"{numbers[k + 1]}): a duplicated slice or two series in one folder"
        )
    if not (np.all(steps > 0) or np.all(steps < 0)):
        raise ValueError(
            "has slices whose positions (ImagePositionPatient) are not in InstanceNumber order, "
            "so stacking them by InstanceNumber would scramble the volume"
        )
    size = np.abs(steps)
    if size.max() > 1.5 * size.min():
        k = int(np.argmax(size))
        raise ValueError(
            f"is missing slices: a gap of {size[k]:.4g} mm between InstanceNumber {numbers[k]} "
            f"and {numbers[k + 1]}, where the smallest step is {size.min():.4g} mm; add the "
            "missing files"
        )


def dicom_affine(first: Any, last: Any, n: int) -> np.ndarray:  # noqa: ANN401 - pydicom datasets
    """The RAS affine MONAI's ``PydicomReader`` builds (default ``affine_lps_to_ras`` and
    ``swap_ij``): voxel axes (column, row, slice), from the first and last slice's position."""
    affine = np.eye(4)
    if "ImageOrientationPatient" not in first or "ImagePositionPatient" not in first:
        return affine  # MONAI falls back to the identity (it warns)
    rx, ry, rz, cx, cy, cz = (float(v) for v in first.ImageOrientationPatient)
    spacing = first.get("PixelSpacing") or (1.0, 1.0)
    dr, dc = float(spacing[0]), float(spacing[1])
    start = np.asarray([float(v) for v in first.ImagePositionPatient])
    affine[:3, 0] = np.asarray([cx, cy, cz]) * dr
    affine[:3, 1] = np.asarray([rx, ry, rz]) * dc
    if n > 1:
        end = np.asarray([float(v) for v in last.ImagePositionPatient])
        affine[:3, 2] = (end - start) / (n - 1)
    affine[:3, 3] = start
    affine[:2] *= -1  # LPS → RAS
    return affine[:, [1, 0, 2, 3]]  # swap_ij


def orientation_code(affine: np.ndarray) -> str:
    """Axis codes of a voxel-to-world affine, e.g. ``RAS`` or ``LPS`` (nibabel's convention)."""
    nib = require("nibabel", extra="medical")
    return "".join(str(c) for c in nib.orientations.aff2axcodes(affine))


def _spacing(affine: np.ndarray, rank: int) -> tuple[float, ...]:
    """Voxel spacing from the affine's column norms, as MONAI's ``affine_to_spacing``."""
    return tuple(float(math.sqrt(float((affine[:3, k] ** 2).sum()))) for k in range(rank))


def _modality(ds: Any) -> str | None:  # noqa: ANN401 - a pydicom dataset
    value = str(ds.get("Modality", "") or "")
    return value if _MODALITY_CODE.match(value) else None

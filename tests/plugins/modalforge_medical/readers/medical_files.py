"""Small real medical files for the reader tests: DICOM series made of pydicom's own CT and MR
test files (shipped offline with pydicom), NIfTI files written with nibabel, manifests."""

from __future__ import annotations

import copy
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

MARKER = "MARKER-PHI-7f3a"

# Patient- and visit-identifying attributes of the DICOM PS3.15 Annex E basic profile (the main
# ones): the privacy tests set each to MARKER and assert it is found in nothing a run writes.
PHI_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientBirthTime",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientMotherBirthName",
    "MedicalRecordLocator",
    "AccessionNumber",
    "StudyID",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "OperatorsName",
    "StationName",
    "DeviceSerialNumber",
    "StudyDescription",
    "SeriesDescription",
    "AdditionalPatientHistory",
    "PatientComments",
    "ImageComments",
)
# Dates and times cannot hold the marker (their VR): these values are searched for as well.
MARKER_DATE, MARKER_TIME = "18770413", "235917"
_DATE_VR = {"PatientBirthDate": MARKER_DATE, "PatientBirthTime": MARKER_TIME}


def source(name: str) -> pydicom.Dataset:
    """pydicom's real ``CT_small.dcm`` or ``MR_small.dcm``, read whole."""
    return pydicom.dcmread(get_testdata_file(name))


def expected_pixels(ds: pydicom.Dataset) -> np.ndarray:
    """The slice as MONAI's PydicomReader gives it: rescaled (``RescaleSlope``/``Intercept``
    when present) and transposed so the first axis runs along a row (``swap_ij``)."""
    pixels = ds.pixel_array.astype(np.float64)
    if "RescaleSlope" in ds or "RescaleIntercept" in ds:
        pixels = pixels * float(ds.get("RescaleSlope", 1.0)) + float(ds.get("RescaleIntercept", 0))
    return pixels.T


def write_series(
    folder: Path,
    name: str = "CT_small.dcm",
    n: int = 4,
    step: float = 5.0,
    numbers: list[int] | None = None,
    offsets: list[float] | None = None,
    series: list[str] | None = None,
    phi: str | None = None,
    values: list[int] | None = None,
) -> list[pydicom.Dataset]:
    """``n`` slices of one real file as a series folder: distinct ``InstanceNumber``,
    ``SOPInstanceUID`` and ``ImagePositionPatient`` (``step`` mm apart along the slice normal,
    or ``offsets``), one ``SeriesInstanceUID`` (or ``series``: one UID label per slice). Slice
    ``k``'s pixels are the original's plus ``values[k]`` (default ``10 * k``), so that a
    misordered stack shows. ``phi`` sets every identifying attribute to that string."""
    folder.mkdir(parents=True, exist_ok=True)
    base = source(name)
    uids = {label: generate_uid() for label in set(series or ["one"])}
    iop = np.asarray([float(v) for v in base.ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    start = np.asarray([float(v) for v in base.ImagePositionPatient])
    written = []
    for k in range(n):
        ds = copy.deepcopy(base)
        ds.InstanceNumber = (numbers or list(range(1, n + 1)))[k]
        z = (offsets or [step * j for j in range(n)])[k]
        ds.ImagePositionPatient = [float(v) for v in start + z * normal]
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesInstanceUID = uids[(series or ["one"] * n)[k]]
        add = (values or [10 * j for j in range(n)])[k]
        pixels = ds.pixel_array.astype(np.int32) + add
        ds.PixelData = pixels.astype(ds.pixel_array.dtype).tobytes()
        if phi is not None:
            mark(ds, phi)
        ds.save_as(folder / f"slice{k:03d}.dcm", enforce_file_format=True)
        written.append(ds)
    return written


def mark(ds: pydicom.Dataset, marker: str) -> None:
    """Set every :data:`PHI_KEYWORDS` attribute to ``marker`` (the birth date and time, whose
    VR cannot hold it, to :data:`MARKER_DATE` / :data:`MARKER_TIME`)."""
    for keyword in PHI_KEYWORDS:
        setattr(ds, keyword, _DATE_VR.get(keyword, marker))


def write_nifti(path: Path, array: np.ndarray, affine: np.ndarray | None = None) -> Path:
    """``array`` as a NIfTI file (``.nii`` or ``.nii.gz`` by the suffix) with ``affine``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, np.eye(4) if affine is None else affine), str(path))
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> str:
    """A CSV manifest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(header)] + [",".join(r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return str(path)

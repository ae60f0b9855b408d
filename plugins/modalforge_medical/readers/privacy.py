"""What of a medical file's header may travel with its voxels: an allow-list, never a deny-list.

MONAI's readers copy header fields into a ``MetaTensor``'s ``meta`` (a NIfTI header's
``descrip`` and ``db_name``, DICOM attributes, the file name), and from there they can reach
logs, reports, checkpoints and embedding outputs. A DICOM header holds patient names, IDs, birth
dates, accession numbers (DICOM PS3.15 Annex E lists them), and real archives often name files
and folders after patients. So the ``volume`` loader rebuilds the metadata from scratch out of
the keys below, each holding geometry computed from the header, a modality code, or the
manifest row: anything a reader adds later stays out unless it is added here on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

# key -> what it holds; the only keys a loaded volume's metadata may have.
SAFE_META_KEYS: dict[str, str] = {
    "affine": "voxel-to-world (RAS) matrix, updated by MONAI's spatial transforms",
    "original_affine": "the affine as read from the file",
    "spatial_shape": "the spatial shape as read from the file",
    "spacing": "voxel spacing per spatial axis (from the affine)",
    "space": "the affine's world space (RAS)",
    "original_channel_dim": "where the file kept its channels (MONAI's EnsureChannelFirst)",
    "orientation": "axis codes of the file's affine, e.g. RAS or LPS",
    "modality": "the DICOM modality code (CT, MR, ...), absent for NIfTI",
    "row": "the manifest row (0-based) the volume comes from: file names may identify patients",
    "filename_or_obj": "'manifest row N', never the path (MONAI messages print this key)",
}
_FROM_READER = ("affine", "original_affine", "spatial_shape", "space")


def safe_meta(
    meta: Mapping[str, Any],
    row: int,
    spacing: tuple[float, ...],
    orientation: str,
    modality: str | None,
) -> dict:
    """A new metadata dict holding only :data:`SAFE_META_KEYS`: the reader's geometry (as plain
    numbers), the spacing, orientation and modality code from the checked header, and the
    manifest row."""
    out: dict[str, Any] = {}
    for key in _FROM_READER:
        if key in meta:
            out[key] = str(meta[key]) if key == "space" else _numbers(meta[key], key)
    out["original_channel_dim"] = _channel_dim(meta.get("original_channel_dim"))
    out["spacing"] = np.asarray(spacing, dtype=np.float64)
    out["orientation"] = orientation
    if modality is not None:
        out["modality"] = modality
    out["row"] = int(row)
    out["filename_or_obj"] = f"manifest row {row}"
    return out


def _numbers(value: Any, key: str) -> Any:  # noqa: ANN401 - a matrix, a shape or a spacing
    """Geometry as float64 tensors (the affine, as MONAI keeps it) or numpy arrays (the shape as
    integers): numbers only, so no string from a header can ride along."""
    if isinstance(value, torch.Tensor):
        return value.detach().to(torch.float64).clone()
    return np.array(value, dtype=np.int64 if key == "spatial_shape" else np.float64)


def _channel_dim(value: Any) -> float | int:  # noqa: ANN401
    try:
        number = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return int(number) if number == number else float("nan")

"""``volume``: a manifest column of NIfTI files or DICOM series → MONAI ``MetaTensor`` volumes.

Each cell names a ``.nii`` / ``.nii.gz`` file, a DICOM series folder, or a single ``.dcm``
file. Files are read by MONAI's ``LoadImage`` with an explicit reader (``NibabelReader`` for
NIfTI, ``PydicomReader`` for DICOM), channel first, as MONAI's own pipelines read them; the
metadata is cut down to the allow-list of :mod:`.privacy`, so the affine travels on to the
orientation and spacing transforms and no header field that could identify a patient does::

    modalities:
      ct: {loader: volume, column: ct_path, params: {require_same_spacing: true}}
      xray: {loader: volume, column: dcm, params: {spatial_dims: 2}}
"""

from __future__ import annotations

import logging
import os
import warnings
import zlib
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from modalforge.contracts import ColumnLoader
from modalforge.data.table import ManifestTable
from modalforge.deps import require
from modalforge.errors import DataError
from modalforge.modality import Modality
from modalforge_datasets.common import PackedStrings
from modalforge_datasets.images import describe
from modalforge_medical.readers.headers import Format, VolumeHeader, file_format, read_header
from modalforge_medical.readers.privacy import safe_meta

DTYPES = {"float32": torch.float32, "float16": torch.float16, "float64": torch.float64}
_TRUNCATED = (EOFError, zlib.error)


class VolumeColumn(ColumnLoader):
    """A column of NIfTI files / DICOM series → channel-first ``MetaTensor`` volumes.

    ``reader`` picks MONAI's reader: ``auto`` by path (a folder or ``.dcm``: pydicom;
    ``.nii`` / ``.nii.gz``: nibabel), or one for every row. ``spatial_dims`` is 3 (a
    ``volume3d`` modality, shape ``(C, X, Y, Z)`` in the file's voxel axes) or 2 (``image2d``,
    a single slice). Every row is checked when the data set is built, from headers only: the
    file exists and has that many spatial dimensions, a DICOM folder holds one series with no
    slice missing, and with ``require_same_spacing`` / ``require_same_orientation`` all rows
    share the first row's spacing (within ``spacing_tolerance``, relative) / axis codes.
    Voxels that are NaN or infinite make the sample unreadable, unless ``nan_to`` replaces them.
    """

    def __init__(
        self,
        columns: Sequence[str],
        reader: Literal["auto", "nibabel", "pydicom"] = "auto",
        spatial_dims: Literal[2, 3] = 3,
        dtype: Literal["float32", "float16", "float64"] = "float32",
        nan_to: float | None = None,
        require_same_spacing: bool = False,
        require_same_orientation: bool = False,
        spacing_tolerance: float = 1e-3,
    ) -> None:
        super().__init__(columns)
        if len(columns) != 1:
            raise ValueError(f"the volume loader reads one column (`column: NAME`), got {columns}")
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if not 0 <= spacing_tolerance < 1:
            raise ValueError(f"spacing_tolerance must be in [0, 1), got {spacing_tolerance}")
        if nan_to is not None and not np.isfinite(nan_to):
            raise ValueError(f"nan_to must be a finite number, got {nan_to}")
        self.column = columns[0]
        self.reader, self.spatial_dims, self.dtype = reader, spatial_dims, dtype
        self.nan_to = nan_to
        self.require_same_spacing = require_same_spacing
        self.require_same_orientation = require_same_orientation
        self.spacing_tolerance = spacing_tolerance
        self.paths = PackedStrings([])
        self.headers: list[VolumeHeader] = []
        self.field = "data.dataset.params.modalities"
        self._load: Any = None
        self._readers: dict[Format, Any] = {}

    def bind(self, name: str, table: ManifestTable, field: str) -> Modality:
        self.field = field
        cells = table.column(self.column, f"{field}.column")
        paths, headers = [], []
        for i, cell in enumerate(cells):
            path = self._path(table, i, cell)
            header = self._header(table, i, path, field)
            if headers:
                self._compare(table, i, path, header, headers[0], field)
            paths.append(path)
            headers.append(header)
        self.paths, self.headers = PackedStrings(paths), headers
        return self._modality(name, headers)

    def _path(self, table: ManifestTable, i: int, cell: str) -> str:
        if not cell.strip():
            raise DataError(
                f"{table.where(i)}: no volume path in column {self.column!r}",
                hint="give every row a NIfTI file or DICOM series folder, or remove the row",
            )
        path = table.resolve_path(cell.strip(), i)
        if not os.path.exists(path):
            raise DataError(
                f"{table.where(i)}: volume {path} (column {self.column!r}) does not exist",
                hint="fix the path (relative paths start at the manifest's folder), or remove "
                "the row",
            )
        return path

    def _header(self, table: ManifestTable, i: int, path: str, field: str) -> VolumeHeader:
        where = f"{table.where(i)}, column {self.column!r}"
        hint = "fix or replace the file, or remove the row"
        try:
            fmt = file_format(path, self.reader)
        except ValueError as exc:
            raise DataError(
                f"{where}: {path} {exc}",
                hint=f"{hint}, or name the reader in {field}.params.reader (now {self.reader!r})",
            ) from None
        try:
            header = read_header(path, fmt)
        except (ValueError, OSError, EOFError, zlib.error) as exc:
            text = str(exc) if isinstance(exc, ValueError) else f"cannot be read ({describe(exc)})"
            raise DataError(f"{where}: {path} {text}", hint=hint) from None
        if header.spatial_dims != self.spatial_dims:
            found = "a 2-D image (one slice)" if header.spatial_dims == 2 else "a 3-D volume"
            raise DataError(
                f"{where}: {path} is {found} of shape {header.spatial}, but {field} reads "
                f"{self.spatial_dims}-D data (params.spatial_dims: {self.spatial_dims})",
                hint=f"set {field}.params.spatial_dims: {header.spatial_dims} if every row is "
                f"{header.spatial_dims}-D, or replace the file",
            )
        return header

    def _compare(
        self,
        table: ManifestTable,
        i: int,
        path: str,
        header: VolumeHeader,
        first: VolumeHeader,
        field: str,
    ) -> None:
        where = f"{table.where(i)}, column {self.column!r}"
        if header.channels != first.channels:
            raise DataError(
                f"{where}: {path} has {header.channels} channel(s), the first row's volume "
                f"{first.channels}",
                hint="give every row the same number of channels (an encoder's input width)",
            )
        same = np.allclose(
            header.spacing[: self.spatial_dims],
            first.spacing[: self.spatial_dims],
            rtol=self.spacing_tolerance,
            atol=1e-6,
        )
        if self.require_same_spacing and not same:
            raise DataError(
                f"{where}: {path} has voxel spacing {_mm(header.spacing)} mm, the first row's "
                f"{_mm(first.spacing)} mm ({field}.params.require_same_spacing is true)",
                hint="resample every volume to one spacing with the `spacing` transform "
                "(data.transforms), or set require_same_spacing: false",
            )
        if self.require_same_orientation and header.orientation != first.orientation:
            raise DataError(
                f"{where}: {path} has orientation {header.orientation}, the first row's "
                f"{first.orientation} ({field}.params.require_same_orientation is true)",
                hint="reorient every volume with the `orientation` transform (e.g. axcodes: "
                "RAS) in data.transforms, or set require_same_orientation: false",
            )

    def _modality(self, name: str, headers: list[VolumeHeader]) -> Modality:
        n = self.spatial_dims
        shapes = [h.spatial[:n] for h in headers]
        spatial = tuple(
            shapes[0][k] if all(s[k] == shapes[0][k] for s in shapes) else None for k in range(n)
        )
        first = headers[0]
        spacings = [h.spacing[:n] for h in headers]
        same_spacing = all(
            np.allclose(s, spacings[0], rtol=self.spacing_tolerance) for s in spacings
        )
        same_orientation = all(h.orientation == first.orientation for h in headers)
        metadata = {
            "spacing": spacings[0] if same_spacing else None,
            "orientation": first.orientation if same_orientation else None,
            "formats": sorted({h.format for h in headers}),
        }
        kind = "volume3d" if n == 3 else "image2d"
        return Modality(name, kind, (first.channels, *spatial), dtype=self.dtype, metadata=metadata)

    def load(self, row: int) -> Any:  # noqa: ANN401 - a monai.data.MetaTensor
        path, header = self.paths[row], self.headers[row]
        try:
            image = self._loader()(path, reader=self._reader(header.format))
        except Exception as exc:
            raise OSError(_unreadable(path, exc)) from exc
        if self.spatial_dims == 2 and image.ndim == 4:  # a NIfTI slice stored as (X, Y, 1)
            image = image[..., 0]
        if image.ndim != self.spatial_dims + 1:
            raise ValueError(
                f"{path} loaded with shape {tuple(image.shape)}, not {self.spatial_dims}-D "
                "channel-first (the file changed after the data set was checked?)"
            )
        data = image.as_tensor()
        bad = ~torch.isfinite(data)
        if bool(bad.any()):
            if self.nan_to is None:
                raise ValueError(
                    f"{path} has {int(bad.sum())} NaN or infinite voxels (set "
                    f"{self.field}.params.nan_to: 0 to replace them)"
                )
            data = torch.nan_to_num(data, nan=self.nan_to, posinf=self.nan_to, neginf=self.nan_to)
        metatensor = require("monai.data", package="monai").MetaTensor
        spacing = header.spacing[: self.spatial_dims]
        meta = safe_meta(image.meta, row, spacing, header.orientation, header.modality)
        return metatensor(data.to(DTYPES[self.dtype]).contiguous(), meta=meta)

    def reads_files(self) -> bool:
        return True

    def _loader(self) -> Any:  # noqa: ANN401 - monai.transforms.LoadImage
        if self._load is None:
            transforms = require("monai.transforms", package="monai")
            # LoadImage also builds every default reader; the GPU DICOM one warns (on stderr,
            # once per worker) that its optional GPU codec is absent. Ours are passed per call.
            quiet = logging.getLogger("monai.data.nvimgcodec_pydicom_plugin")
            level = quiet.level
            quiet.setLevel(logging.ERROR)
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*[Nn]v[Ii]mage[Cc]odec")
                    warnings.filterwarnings("ignore", message=".*NvImgCodec")
                    self._load = transforms.LoadImage(image_only=True, ensure_channel_first=True)
            finally:
                quiet.setLevel(level)
        return self._load

    def _reader(self, fmt: Format) -> Any:  # noqa: ANN401 - a monai.data.ImageReader
        if fmt not in self._readers:
            data = require("monai.data", package="monai")
            self._readers[fmt] = (
                data.NibabelReader() if fmt == "nifti" else data.PydicomReader(fname_regex=None)
            )
        return self._readers[fmt]

    def __getstate__(self) -> dict[str, Any]:
        """Data loader workers rebuild MONAI's loader and readers themselves."""
        return {**self.__dict__, "_load": None, "_readers": {}}


def _unreadable(path: str, exc: BaseException) -> str:
    """Why ``path`` could not be loaded, naming the truncated-file case plainly."""
    if isinstance(exc, _TRUNCATED) or "Compressed file ended" in str(exc):
        return f"{path} is truncated or corrupt ({describe(exc)}); re-export or copy it again"
    return f"{path} cannot be read ({describe(exc)})"


def _mm(spacing: tuple[float, ...]) -> str:
    return "×".join(f"{s:.4g}" for s in spacing)

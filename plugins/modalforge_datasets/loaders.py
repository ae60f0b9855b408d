"""Built-in column loaders of the ``manifest`` reader: image files, text, tabular columns, arrays.

Each reads one modality from one or more manifest columns (see
:class:`~modalforge.contracts.ColumnLoader`). Cells are checked once, when the data set is
built, so a bad value names its row before any training starts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from modalforge.contracts import ColumnLoader
from modalforge.data.table import ManifestTable
from modalforge.errors import DataError, SpecError
from modalforge.modality import KIND_NDIM, Modality, ModalityKind
from modalforge_datasets.common import PackedStrings
from modalforge_datasets.images import decode_image


def _one_column(columns: Sequence[str], loader: str) -> str:
    if len(columns) != 1:
        raise ValueError(f"the {loader} loader reads one column (`column: NAME`), got {columns}")
    return columns[0]


class ImageColumn(ColumnLoader):
    """A column of image file paths → raw PIL images (``RGB`` or grayscale ``L``), for the
    image encoder's preprocessing; ``image_size`` is the size it resizes them to."""

    def __init__(
        self,
        columns: Sequence[str],
        mode: Literal["RGB", "L"] = "RGB",
        image_size: int | None = None,
    ) -> None:
        super().__init__(columns)
        self.column = _one_column(columns, "image")
        if image_size is not None and image_size < 1:
            raise ValueError(f"image_size must be positive, got {image_size}")
        self.mode, self.image_size = mode, image_size
        self.paths = PackedStrings([])

    def bind(self, name: str, table: ManifestTable, field: str) -> Modality:
        cells = table.column(self.column, f"{field}.column")
        paths = []
        for i, cell in enumerate(cells):
            if not cell:
                raise DataError(
                    f"{table.where(i)}: no image path in column {self.column!r}",
                    hint="give every row an image, or remove the row",
                )
            paths.append(table.resolve_path(cell, i))
        self.paths = PackedStrings(paths)
        size, channels = self.image_size, 1 if self.mode == "L" else 3
        return Modality(name, "image2d", (channels, size, size), dtype="image")

    def load(self, row: int) -> Any:  # noqa: ANN401 - a PIL image
        image = decode_image(self.paths[row])
        return image.convert("L") if self.mode == "L" else image

    def reads_files(self) -> bool:
        return True


class TextColumn(ColumnLoader):
    """A column of text (a caption, a report) → raw strings for the text encoder's tokenizer."""

    def __init__(self, columns: Sequence[str], allow_empty: bool = False) -> None:
        super().__init__(columns)
        self.column = _one_column(columns, "text")
        self.allow_empty = allow_empty
        self.texts = PackedStrings([])

    def bind(self, name: str, table: ManifestTable, field: str) -> Modality:
        cells = table.column(self.column, f"{field}.column")
        if not self.allow_empty:
            empty = [i for i, c in enumerate(cells) if not c.strip()]
            if empty:
                raise DataError(
                    f"{table.where(empty[0])}: empty text in column {self.column!r} "
                    f"({len(empty)} rows)",
                    hint=f"fill the text, remove the rows, or set {field}.params.allow_empty: true",
                )
        self.texts = PackedStrings(cells)
        return Modality(name, "text", (None,), dtype="str")

    def load(self, row: int) -> str:
        return self.texts[row]


class TabularColumns(ColumnLoader):
    """Numeric and categorical columns → one float vector per row.

    Numeric cells parse as floats; ``categorical`` columns become one-hot blocks over their
    ``categories`` (declared, or the sorted values found in the manifest). An empty cell is
    missing: ``NaN`` (all of a categorical block), to be imputed by an ``impute`` transform, which
    can also add missing-value indicators. ``kind`` is ``tabular`` (clinical variables) or
    ``lowdim`` (a robot's state).
    """

    def __init__(
        self,
        columns: Sequence[str],
        categorical: tuple[str, ...] = (),
        categories: dict[str, list[str]] | None = None,
        kind: Literal["tabular", "lowdim"] = "tabular",
    ) -> None:
        super().__init__(columns)
        if not columns:
            raise ValueError("the tabular loader needs `columns: [A, B, ...]`")
        categories = dict(categories or {})
        stray = sorted((set(categorical) | set(categories)) - set(columns))
        if stray:
            raise ValueError(
                f"categorical column(s) {', '.join(map(repr, stray))} are not among the "
                f"declared columns {list(columns)}"
            )
        self.categorical = tuple(dict.fromkeys([*categorical, *categories]))
        self.categories = categories
        self.kind = kind
        self.values = torch.empty(0)

    def bind(self, name: str, table: ManifestTable, field: str) -> Modality:
        blocks: list[np.ndarray] = []
        features: list[str] = []
        for column in self.columns:
            cells = table.column(column, f"{field}.columns")
            if column in self.categorical:
                cats = self._categories(column, cells)
                blocks.append(_one_hot(cells, cats, column, table))
                features += [f"{column}={c}" for c in cats]
            else:
                blocks.append(_numbers(cells, column, table, field)[:, None])
                features.append(column)
        self.values = torch.from_numpy(np.concatenate(blocks, axis=1).astype(np.float32))
        return Modality(name, self.kind, (len(features),), metadata={"features": features})

    def _categories(self, column: str, cells: list[str]) -> list[str]:
        if column in self.categories:
            return list(self.categories[column])
        return sorted({c for c in cells if c})

    def load(self, row: int) -> Tensor:
        return self.values[row]


def _numbers(cells: list[str], column: str, table: ManifestTable, field: str) -> np.ndarray:
    out = np.empty(len(cells), dtype=np.float64)
    for i, cell in enumerate(cells):
        if not cell or cell.lower() in ("na", "nan", "null", "none"):
            out[i] = math.nan
            continue
        try:
            out[i] = float(cell)
        except ValueError:
            raise DataError(
                f"{table.where(i)}: {cell!r} in column {column!r} is not a number",
                hint=f"fix the value, or declare {column!r} under {field}.params.categorical",
            ) from None
        if not math.isfinite(out[i]):
            raise DataError(f"{table.where(i)}: {cell!r} in column {column!r} is not finite")
    return out


def _one_hot(cells: list[str], cats: list[str], column: str, table: ManifestTable) -> np.ndarray:
    index = {c: k for k, c in enumerate(cats)}
    out = np.zeros((len(cells), len(cats)), dtype=np.float64)
    for i, cell in enumerate(cells):
        if not cell:
            out[i] = math.nan
        elif cell in index:
            out[i, index[cell]] = 1.0
        else:
            raise DataError(
                f"{table.where(i)}: {cell!r} in column {column!r} is not one of its declared "
                f"categories ({', '.join(cats)})",
                hint="add it to the column's categories, or fix the value",
            )
    return out


class ArrayFile(ColumnLoader):
    """A column of ``.npy`` file paths → float tensors of one shape (a volume, a time series,
    a depth map), read without pickle. ``kind`` declares the modality kind of the arrays."""

    def __init__(
        self,
        columns: Sequence[str],
        kind: Literal["image2d", "volume3d", "depth", "timeseries", "lowdim", "tabular", "audio"],
    ) -> None:
        super().__init__(columns)
        self.column = _one_column(columns, "npy")
        self.kind = ModalityKind(kind)
        self.paths = PackedStrings([])

    def bind(self, name: str, table: ManifestTable, field: str) -> Modality:
        cells = table.column(self.column, f"{field}.column")
        paths = [table.resolve_path(c, i) if c else "" for i, c in enumerate(cells)]
        shape = None
        for i, path in enumerate(paths):
            found = _npy_shape(path, table.where(i))
            if shape is None:
                shape = found
            elif found != shape:
                raise DataError(
                    f"{table.where(i)}: array {path} has shape {found}, the first row's {shape}",
                    hint="store every sample with the same shape (resample or pad them)",
                )
        ndim = KIND_NDIM[self.kind]
        if shape is not None and ndim is not None and len(shape) != ndim:
            raise SpecError(
                f"{field}.params.kind",
                f"{self.kind} arrays have {ndim} dimensions, but {paths[0]} has shape {shape}",
                hint="choose the kind that matches the arrays (image2d: C×H×W, volume3d: C×D×H×W)",
            )
        self.paths = PackedStrings(paths)
        return Modality(name, self.kind, tuple(shape or ()))

    def load(self, row: int) -> Tensor:
        return torch.from_numpy(np.load(self.paths[row], allow_pickle=False).astype(np.float32))

    def reads_files(self) -> bool:
        return True


def _npy_shape(path: str, where: str) -> tuple[int, ...]:
    if not path:
        raise DataError(f"{where}: no array path", hint="give every row a .npy file")
    try:
        shape = np.load(path, mmap_mode="r", allow_pickle=False).shape  # reads the header only
    except FileNotFoundError:
        raise DataError(f"{where}: array file {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{where}: {path} is not a readable .npy file ({exc})") from None
    return tuple(int(d) for d in shape)

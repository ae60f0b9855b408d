"""``manifest``: a multimodal, labelled data set described by a CSV, TSV, JSON Lines or Parquet
manifest, one row per sample.

Each modality is declared by the column loader that reads it, and the target by its kind::

    dataset:
      name: manifest
      params:
        path: data/patients.csv           # or train: / val: / test: one manifest per split
        modalities:
          xray: {loader: image, column: image_path, params: {mode: L, image_size: 224}}
          report: {loader: text, column: findings}
          clinical: {loader: tabular, columns: [age, sex, bmi], params: {categorical: [sex]}}
        target: {kind: multiclass, column: diagnosis, classes: [normal, pneumonia]}

Relative paths resolve against the manifest's folder, and no path may point outside it unless
``root`` names a wider folder. With a ``split_column`` (default ``split``) the manifest's rows
fall into its named splits; without one they form the split ``all``, which ``data.split``
divides (grouped by a column such as a patient id, stratified by the target).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import Tensor
from torch.utils.data import Dataset

from modalforge.contracts import TARGET_KEY, ColumnLoader, Target, TargetKind
from modalforge.data.paths import PathPolicy
from modalforge.data.table import ManifestTable
from modalforge.errors import DataError, SpecError
from modalforge.registry import Registry
from modalforge.spec.params import validate_params
from modalforge_datasets.common import SplitsReader
from modalforge_datasets.images import BadSamples, OnError, describe
from modalforge_datasets.manifest_io import ManifestFormat, read_manifest, split_files

FIELD = "data.dataset.params"
RESERVED = frozenset({TARGET_KEY, "masks"})


class ColumnSpec(BaseModel):
    """One modality: the registered column loader that reads it and its column(s)."""

    model_config = ConfigDict(extra="forbid")

    loader: str = Field(description="registered column loader (`modalforge components loader`)")
    column: str | None = Field(None, description="the column it reads")
    columns: list[str] | None = Field(None, description="or the columns it reads")
    params: dict[str, Any] = Field(default_factory=dict, description="the loader's parameters")

    @model_validator(mode="after")
    def _one(self) -> ColumnSpec:
        if (self.column is None) == (self.columns is None):
            raise ValueError("give either `column: NAME` or `columns: [A, B, ...]`")
        return self

    @property
    def names(self) -> list[str]:
        return [self.column] if self.column is not None else list(self.columns or [])


class TargetSpec(BaseModel):
    """What the model predicts, from one column or several."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["multiclass", "multilabel", "regression"] = "multiclass"
    column: str | None = Field(
        None, description="the label column (multilabel: labels joined by `separator`)"
    )
    columns: list[str] | None = Field(
        None, description="multilabel: one 0/1 column per class; regression: one per output"
    )
    classes: list[str] | None = Field(
        None, description="class names in output order (default: the sorted values found)"
    )
    separator: str = Field("|", description="multilabel: separates labels in one cell")

    @model_validator(mode="after")
    def _shape(self) -> TargetSpec:
        if (self.column is None) == (self.columns is None):
            raise ValueError("give either `column: NAME` or `columns: [A, B, ...]`")
        if self.kind == "multiclass" and self.columns is not None:
            raise ValueError("a multiclass target reads one `column`")
        if self.kind == "regression" and self.classes is not None:
            raise ValueError("a regression target has no `classes`")
        if self.columns is not None and self.classes is not None:
            raise ValueError("with `columns`, the column names are the classes")
        return self

    @property
    def names(self) -> list[str]:
        return [self.column] if self.column is not None else list(self.columns or [])


class ManifestDataset(SplitsReader):
    """Samples ``{<modality>: sample, "target": tensor}`` from manifest rows; see the module
    docstring. Unreadable files are skipped and counted (``on_error: skip``) or stop the run
    (``raise``); every other bad cell is an error naming its file and line when the data set is
    built."""

    reader_name = "manifest"

    def __init__(
        self,
        registry: Registry,
        modalities: dict[str, ColumnSpec],
        target: TargetSpec | None = None,
        path: str | None = None,
        train: str | None = None,
        val: str | None = None,
        test: str | None = None,
        format: ManifestFormat = "auto",  # noqa: A002 - the user-facing parameter name
        split_column: str = "split",
        root: str | None = None,
        on_error: OnError = "skip",
    ) -> None:
        per_split = split_files(
            path, train, val, test, field=FIELD, example="path: data/samples.csv"
        )
        if not modalities:
            raise SpecError(
                f"{FIELD}.modalities",
                "declare at least one modality",
                hint="e.g. modalities: {image: {loader: image, column: path}}",
            )
        clash = sorted(RESERVED.intersection(modalities))
        if clash:
            raise SpecError(
                f"{FIELD}.modalities.{clash[0]}", f"{clash[0]!r} is reserved; rename the modality"
            )
        BadSamples(on_error, FIELD)  # validates on_error now
        files = {"": path} if path is not None else per_split
        self.table, split_of = _read(files, format, root)
        if path is not None:
            split_of = _split_values(self.table, split_column)
        self.loaders = {
            name: _build_loader(registry, name, spec, self.table)
            for name, spec in modalities.items()
        }
        self._modalities = {
            name: loader.bind(name, self.table, f"{FIELD}.modalities.{name}")
            for name, loader in self.loaders.items()
        }
        self._target, self.targets = _parse_target(target, self.table)
        names = list(dict.fromkeys(split_of))
        self._splits = {
            s: ManifestRows(self, np.flatnonzero(np.asarray(split_of) == s), on_error)
            for s in names
        }

    def labels(self, split: str) -> np.ndarray | None:
        rows = self.load(split).rows
        if self.targets is None or self._target.kind != TargetKind.MULTICLASS:
            return None
        return self.targets[torch.as_tensor(rows)].numpy()

    def metadata(self, split: str) -> dict[str, Sequence[Any]]:
        rows = self.load(split).rows
        return {c: [v[i] for i in rows] for c, v in self.table.columns.items()}


class ManifestRows(Dataset):
    """One split: the manifest rows ``rows``, each loaded by the reader's column loaders."""

    def __init__(self, reader: ManifestDataset, rows: np.ndarray, on_error: OnError) -> None:
        self.loaders = reader.loaders
        self.targets = reader.targets
        self.table = reader.table
        self.rows = rows
        self.bad = BadSamples(on_error, FIELD)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        row = int(self.rows[index])
        sample: dict[str, Any] = {}
        for name, loader in self.loaders.items():
            try:
                sample[name] = loader.load(row)
            except Exception as exc:  # noqa: BLE001 - an unreadable file makes the sample bad
                if not loader.reads_files():
                    raise
                self.bad.handle(f"{name} of {self.table.where(row)}", describe(exc))
                return None
        if self.targets is not None:
            sample[TARGET_KEY] = self.targets[row]
        return sample

    def modality_samples(self, name: str) -> list[Any]:
        """One modality's samples, read without the others (fitting a tabular transform)."""
        if name == TARGET_KEY and self.targets is not None:
            return [self.targets[int(r)] for r in self.rows]
        return [self.loaders[name].load(int(r)) for r in self.rows]


def _read(files: dict[str, str], fmt: ManifestFormat, root: str | None):  # noqa: ANN202
    """One :class:`ManifestTable` of all files' rows, and the split each row belongs to."""
    columns: dict[str, list[str]] = {}
    origin: list[str] = []
    lines: list[int] = []
    policies: list[PathPolicy] = []
    split_of: list[str] = []
    for split, file in files.items():
        field = f"{FIELD}.{split or 'path'}"
        manifest = read_manifest(Path(file).expanduser(), fmt, field)
        if not len(manifest):
            raise DataError(f"{field}: manifest {file} has no rows", hint="add one row per sample")
        policy = PathPolicy.for_manifest(manifest.path, root, f"{FIELD}.root")
        start = len(lines)
        for name in manifest.columns:
            columns.setdefault(name, [""] * start)
        for name, values in columns.items():
            values.extend(manifest.columns.get(name, [""] * len(manifest)))
        origin += [str(manifest.path)] * len(manifest)
        lines += manifest.lines
        policies += [policy] * len(manifest)
        split_of += [split] * len(manifest)
    return ManifestTable(columns, origin, lines, policies), split_of


def _split_values(table: ManifestTable, column: str) -> list[str]:
    if column not in table.columns:
        return ["all"] * len(table)
    values = table.columns[column]
    empty = [i for i, v in enumerate(values) if not v]
    if empty:
        raise DataError(
            f"{table.where(empty[0])}: empty split column {column!r} ({len(empty)} rows)",
            hint=f"give every row a split (train / val / test), or rename the column so "
            f"{FIELD}.split_column does not match it",
        )
    return list(values)


def _build_loader(
    registry: Registry, name: str, spec: ColumnSpec, table: ManifestTable
) -> ColumnLoader:
    from modalforge.pipeline.build import instantiate

    path = f"{FIELD}.modalities.{name}"
    if isinstance(spec, dict):  # built from Python without validation
        spec = ColumnSpec.model_validate(spec)
    info = registry.get("loader", spec.loader, path=f"{path}.loader")
    params = validate_params(info, spec.params, path)
    return instantiate(info, params, path, columns=tuple(spec.names))


def _parse_target(
    spec: TargetSpec | None, table: ManifestTable
) -> tuple[Target | None, Tensor | None]:
    if spec is None:
        return None, None
    if isinstance(spec, dict):
        spec = TargetSpec.model_validate(spec)
    field = f"{FIELD}.target"
    if spec.kind == "regression":
        names = spec.names
        cols = [table.column(c, f"{field}.column{'s' if spec.columns else ''}") for c in names]
        values = np.stack(
            [_floats(cells, c, table) for c, cells in zip(names, cols, strict=True)], 1
        )
        t = torch.from_numpy(values.astype(np.float32))
        return Target(TargetKind.REGRESSION, len(names)), (t[:, 0] if len(names) == 1 else t)
    if spec.kind == "multilabel" and spec.columns is not None:
        cols = [table.column(c, f"{field}.columns") for c in spec.columns]
        values = np.stack(
            [_binary(cells, c, table) for c, cells in zip(spec.columns, cols, strict=True)], 1
        )
        target = Target(TargetKind.MULTILABEL, len(spec.columns), tuple(spec.columns))
        return target, torch.from_numpy(values.astype(np.float32))
    cells = table.column(spec.column, f"{field}.column")
    if spec.kind == "multilabel":
        lists = [_labels_in(cell, spec.separator) for cell in cells]
        classes = spec.classes or sorted({x for labels in lists for x in labels})
        index = _class_index(classes, field)
        out = np.zeros((len(cells), len(classes)), dtype=np.float32)
        for i, labels in enumerate(lists):
            for label in labels:
                out[i, _lookup(index, label, spec.column, table, i, field)] = 1.0
        return Target(TargetKind.MULTILABEL, len(classes), tuple(classes)), torch.from_numpy(out)
    empty = [i for i, c in enumerate(cells) if not c]
    if empty:
        raise DataError(
            f"{table.where(empty[0])}: no label in column {spec.column!r} ({len(empty)} rows)",
            hint="label every row, or remove the unlabelled rows",
        )
    classes = spec.classes or sorted(set(cells))
    index = _class_index(classes, field)
    labels = [_lookup(index, c, spec.column, table, i, field) for i, c in enumerate(cells)]
    if len(classes) < 2:
        raise DataError(
            f"{field}: the manifest has one class ({classes[0]!r}); a classifier needs two",
            hint=f"declare {field}.classes, or add samples of the other classes",
        )
    return (
        Target(TargetKind.MULTICLASS, len(classes), tuple(classes)),
        torch.tensor(labels, dtype=torch.long),
    )


def _class_index(classes: list[str], field: str) -> dict[str, int]:
    if len(set(classes)) != len(classes):
        raise SpecError(f"{field}.classes", f"{classes} lists a class twice")
    return {c: i for i, c in enumerate(classes)}


def _lookup(
    index: dict[str, int], label: str, column: str, table: ManifestTable, row: int, field: str
) -> int:
    if label not in index:
        shown = ", ".join(list(index)[:10]) + (", ..." if len(index) > 10 else "")
        raise DataError(
            f"{table.where(row)}: label {label!r} in column {column!r} is not one of the declared "
            f"classes ({shown})",
            hint=f"add it to {field}.classes, or fix the row",
        )
    return index[label]


def _labels_in(cell: str, separator: str) -> list[str]:
    if cell.startswith("["):  # a JSON list (JSON Lines / Parquet manifests)
        import json

        try:
            return [str(x) for x in json.loads(cell)]
        except (ValueError, TypeError):
            pass
    return [x.strip() for x in cell.split(separator) if x.strip()]


def _floats(cells: list[str], column: str, table: ManifestTable) -> np.ndarray:
    out = np.empty(len(cells))
    for i, cell in enumerate(cells):
        try:
            out[i] = float(cell)
        except ValueError:
            raise DataError(
                f"{table.where(i)}: target {cell!r} in column {column!r} is not a number",
                hint="regression targets are numbers; remove or fix the row",
            ) from None
        if not np.isfinite(out[i]):
            raise DataError(f"{table.where(i)}: target {cell!r} in column {column!r} is not finite")
    return out


_TRUE, _FALSE = {"1", "1.0", "true", "yes"}, {"0", "0.0", "false", "no"}


def _binary(cells: list[str], column: str, table: ManifestTable) -> np.ndarray:
    out = np.empty(len(cells))
    for i, cell in enumerate(cells):
        value = cell.strip().lower()
        if value not in _TRUE | _FALSE:
            raise DataError(
                f"{table.where(i)}: {cell!r} in label column {column!r} is not 0 or 1",
                hint="each class column holds 1 (has the label) or 0",
            )
        out[i] = value in _TRUE
    return out

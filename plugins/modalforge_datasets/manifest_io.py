"""Reading CSV / TSV / JSON Lines manifests into columns of strings, with errors naming the file."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from modalforge.errors import DataError

ManifestFormat = Literal["auto", "csv", "tsv", "jsonl", "parquet"]
_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


@dataclass
class Manifest:
    """A manifest's rows as ``{column: [str, ...]}``, and each row's line number in the file."""

    path: Path
    columns: dict[str, list[str]]
    lines: list[int]

    def __len__(self) -> int:
        return len(self.lines)


SPLIT_NAMES = ("train", "val", "test")


def split_files(
    path: str | None,
    train: str | None,
    val: str | None,
    test: str | None,
    *,
    field: str,
    example: str,
) -> dict[str, str]:
    """The per-split manifests (``{}`` when ``path`` names one manifest); exactly one of the two
    ways must be used."""
    per_split = {s: p for s, p in zip(SPLIT_NAMES, (train, val, test), strict=True) if p}
    if (path is None) == (not per_split):
        raise DataError(
            f"{field}: set either `path` (one manifest) or `train` / `val` / `test` "
            "(one manifest per split)" + (", not both" if path is not None else ""),
            hint=f"e.g. {example}",
        )
    return per_split


def manifest_format(path: Path, fmt: ManifestFormat, field: str) -> str:
    if fmt != "auto":
        return fmt
    found = _SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise DataError(
            f"{field}: cannot tell the format of manifest {path} from its suffix "
            f"{path.suffix or '(none)'}",
            hint="name it .csv, .tsv, .jsonl or .parquet, or set data.dataset.params.format",
        )
    return found


def read_manifest(path: Path, fmt: ManifestFormat, field: str) -> Manifest:
    """All rows of ``path``; values are strings ("" for missing ones)."""
    if not path.is_file():
        raise DataError(
            f"{field}: manifest {path} does not exist",
            hint="check the path (relative paths are from the working directory)",
        )
    kind = manifest_format(path, fmt, field)
    if kind == "parquet":
        return _read_parquet(path, field)
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            rows = list(_jsonl_rows(f, path) if kind == "jsonl" else _csv_rows(f, kind))
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{field}: manifest {path} is not UTF-8 text ({exc.reason} at byte {exc.start})",
            hint="save the manifest as UTF-8",
        ) from None
    except csv.Error as exc:
        raise DataError(f"{field}: manifest {path} is not valid {kind.upper()}: {exc}") from None
    names: dict[str, None] = {}
    for _, row in rows:
        names.update(dict.fromkeys(row))
    columns = {name: [row.get(name, "") for _, row in rows] for name in names}
    return Manifest(path, columns, [line for line, _ in rows])


def _read_parquet(path: Path, field: str) -> Manifest:
    """A Parquet file's columns as strings (lists and maps as JSON), as a CSV would give them;
    row numbers count from 1."""
    from modalforge.deps import require

    pq = require("pyarrow.parquet", extra="parquet", package="pyarrow")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise DataError(
            f"{field}: manifest {path} is not a readable Parquet file: {exc}",
            hint='check the file (e.g. `python -c "import pyarrow.parquet as pq; '
            f"print(pq.read_schema('{path}'))\"`)",
        ) from None
    columns = {
        name: [_text(v) for v in table.column(name).to_pylist()] for name in table.column_names
    }
    return Manifest(path, columns, list(range(1, table.num_rows + 1)))


def _csv_rows(f, kind: str) -> Iterator[tuple[int, dict[str, str]]]:  # noqa: ANN001
    reader = csv.DictReader(f, delimiter="\t" if kind == "tsv" else ",")
    for row in reader:
        yield reader.line_num, {k: (v or "").strip() for k, v in row.items() if k is not None}


def _jsonl_rows(f, path: Path) -> Iterator[tuple[int, dict[str, str]]]:  # noqa: ANN001
    for number, line in enumerate(f, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"manifest {path}, line {number}: not valid JSON ({exc.msg})",
                hint="each line of a .jsonl manifest is one JSON object",
            ) from None
        if not isinstance(row, dict):
            raise DataError(
                f"manifest {path}, line {number}: a JSON {type(row).__name__}, not an object",
                hint='each line is an object such as {"image": "a.jpg", "caption": "a cat"}',
            )
        yield number, {k: _text(v) for k, v in row.items()}


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value != value:  # NaN (pandas' missing value)
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (dict, list, bool)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)

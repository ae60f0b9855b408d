"""The built-in ``csv`` logger: the records of ``metrics.jsonl`` as one CSV file per split."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modalforge.contracts.callback import RunLogger
from modalforge.engine.run import RunContext
from modalforge.io import append_line, write_text


class CsvLogger(RunLogger):
    """Writes ``<run>/metrics_<split>.csv`` (``filename`` with ``{split}``): columns ``step``,
    ``epoch``, then every value of the records (``lr``, ``time``, ``elapsed`` included).

    Each record is appended and flushed to disk as one line; a record with a new column rewrites
    the file atomically with the wider header. A resumed run drops the rows after its checkpoint's
    step, as ``metrics.jsonl`` does.
    """

    def __init__(self, filename: str = "metrics_{split}.csv") -> None:
        if "{split}" not in filename or "/" in filename or "\\" in filename:
            raise ValueError(
                "filename must contain {split} and no folder, e.g. metrics_{split}.csv"
            )
        self.filename = filename
        self.folder: Path | None = None
        self._headers: dict[Path, list[str]] = {}

    def path(self, split: str) -> Path:
        return self.folder / self.filename.format(split=split)

    def on_train_start(self, run: RunContext) -> None:
        self.folder = Path(run.out_dir)
        self._headers = {}
        prefix, suffix = self.filename.split("{split}", 1)
        for path in sorted(self.folder.glob(f"{prefix}*{suffix}")):
            header, rows = _read(path)
            kept = [r for r in rows if _int(r.get("step")) <= run.step]
            if kept:
                write_text(path, _format(header, kept))
                self._headers[path] = header
            else:
                path.unlink()

    def log_metrics(
        self, run: RunContext, step: int, epoch: int, split: str, values: Mapping[str, Any]
    ) -> None:
        if self.folder is None:
            self.on_train_start(run)
        path = self.path(split)
        row = {"step": step, "epoch": epoch, **values}
        header = self._headers.get(path)
        if header is None and path.is_file():
            header, _ = _read(path)
        if header is None:
            header = list(row)
            write_text(path, _format(header, [row]))
        elif set(row) <= set(header):
            append_line(path, _format(header, [row], with_header=False))
        else:
            _, rows = _read(path)
            header = header + [k for k in row if k not in header]
            write_text(path, _format(header, [*rows, row]))
        self._headers[path] = header


def _format(header: list[str], rows: list[Mapping[str, Any]], with_header: bool = True) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    if with_header:
        writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        # A line cut short by a crash lacks values (None): drop it.
        rows = [r for r in reader if None not in r and None not in r.values()]
        return list(reader.fieldnames or []), rows


def _int(value: str | None) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 1 << 62  # unreadable: dropped

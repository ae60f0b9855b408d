"""Read ``results.jsonl`` and aggregate it into a leaderboard (CSV and Markdown)."""

from __future__ import annotations

import csv
import io as _io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modalforge import io

RESULTS_FILE = "results.jsonl"


def read_results(path: str | Path) -> tuple[list[dict[str, Any]], int]:
    """(records, number of unreadable lines). A missing file has no records."""
    path = Path(path)
    if not path.exists():
        return [], 0
    records, corrupt = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            corrupt += 1
            continue
        if not isinstance(rec, dict) or "run_id" not in rec or "status" not in rec:
            corrupt += 1
            continue
        records.append(rec)
    return records, corrupt


def latest_runs(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last record of each run (a rerun supersedes an earlier failure), in first-seen order."""
    latest: dict[str, dict[str, Any]] = {}
    for rec in records:
        previous = latest.get(rec["run_id"])
        if previous is None or previous.get("status") != "ok" or rec.get("status") == "ok":
            latest[rec["run_id"]] = rec
    return list(latest.values())


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n-1; 0 for a single value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


@dataclass
class Row:
    """One leaderboard row: a cell aggregated over its seeds."""

    cell_id: str
    label: str
    overrides: dict[str, Any]
    n_ok: int
    n_runs: int
    status: str  # ok, partial, failed, skipped
    metrics: dict[str, tuple[float, float]]
    params_total: int | None
    params_trainable: int | None
    train_seconds: float | None
    train_samples_per_s: float | None
    infer_samples_per_s: float | None
    peak_mem_mb: float | None
    note: str = ""


def metric_names(records: Sequence[dict[str, Any]]) -> list[str]:
    """Metric keys in first-seen order, task metrics before the eval ``loss``."""
    names: list[str] = []
    for rec in records:
        for key in rec.get("metrics") or {}:
            if key not in names:
                names.append(key)
    return [n for n in names if "loss" not in n] + [n for n in names if "loss" in n]


@dataclass(frozen=True)
class ExpectedCell:
    """A cell the grid defines, so that cells without (all) their records still get a row."""

    cell_id: str
    label: str
    overrides: dict[str, Any]
    seeds: int


def leaderboard(
    records: Sequence[dict[str, Any]],
    rank_by: str | None = None,
    expected: Sequence[ExpectedCell] = (),
) -> tuple[list[Row], list[str]]:
    """(rows sorted by ``rank_by`` — default the first task metric — descending, metric names).

    With ``expected``, every grid cell has a row: ``pending`` when none of its runs has a
    record yet, ``partial`` while some seeds are missing, and ``seeds`` counts the grid's seeds.
    """
    runs = latest_runs(records)
    names = metric_names([r for r in runs if r.get("status") == "ok"])
    groups: dict[str, list[dict[str, Any]]] = {}
    for rec in runs:
        groups.setdefault(rec["cell_id"], []).append(rec)
    planned = {c.cell_id: c for c in expected}
    rows = [
        Row(c.cell_id, c.label, c.overrides, 0, c.seeds, "pending", {}, *([None] * 6))
        for c in expected
        if c.cell_id not in groups
    ]
    for cell_id, recs in groups.items():
        ok = [r for r in recs if r.get("status") == "ok"]
        metrics = {}
        for name in names:
            vals = [float(r["metrics"][name]) for r in ok if name in (r.get("metrics") or {})]
            if vals:
                metrics[name] = mean_std(vals)

        def avg(key: str, rs: list[dict[str, Any]] = ok) -> float | None:
            vals = [float(r[key]) for r in rs if r.get(key) is not None]
            return sum(vals) / len(vals) if vals else None

        bad = [r for r in recs if r.get("status") != "ok"]
        n_runs = max(len(recs), planned[cell_id].seeds if cell_id in planned else 0)
        if bad:
            status = "partial" if ok else bad[-1]["status"]
        else:
            status = "ok" if len(ok) >= n_runs else "partial"
        note = ""
        if bad:
            err = bad[-1].get("error") or {}
            note = f"{err.get('type', '')}: {err.get('message', '')}".strip(": ")
        first = recs[0]
        rows.append(
            Row(
                cell_id=cell_id,
                label=first.get("label", ""),
                overrides=first.get("overrides", {}),
                n_ok=len(ok),
                n_runs=n_runs,
                status=status,
                metrics=metrics,
                params_total=ok[0].get("params_total") if ok else None,
                params_trainable=ok[0].get("params_trainable") if ok else None,
                train_seconds=avg("train_seconds"),
                train_samples_per_s=avg("train_samples_per_s"),
                infer_samples_per_s=avg("infer_samples_per_s"),
                peak_mem_mb=max(
                    (float(r["peak_mem_mb"]) for r in ok if r.get("peak_mem_mb")), default=None
                ),
                note=note.splitlines()[0] if note else "",
            )
        )
    key = rank_by if rank_by in names else next(iter(names), None)
    descending = key is not None and "loss" not in key
    rows.sort(key=lambda r: _sort_key(r, key, descending))
    return rows, names


def _sort_key(row: Row, key: str | None, descending: bool) -> tuple[int, float]:
    if key is None or key not in row.metrics:
        return (1, 0.0)
    value = row.metrics[key][0]
    return (0, -value if descending else value)


_COLUMNS = ("params", "trainable", "train_s", "train_samples_per_s", "infer_samples_per_s")


def _fixed(row: Row) -> list[Any]:
    return [
        row.params_total,
        row.params_trainable,
        row.train_seconds,
        row.train_samples_per_s,
        row.infer_samples_per_s,
    ]


def to_csv(rows: Sequence[Row], names: Sequence[str]) -> str:
    buf = _io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    header = ["rank", "cell_id", "label", "status", "seeds_ok", "seeds"]
    for n in names:
        header += [f"{n}_mean", f"{n}_std"]
    w.writerow([*header, *_COLUMNS, "peak_mem_mb", "note"])
    for i, row in enumerate(rows, 1):
        vals: list[Any] = [i, row.cell_id, row.label, row.status, row.n_ok, row.n_runs]
        for n in names:
            vals += list(row.metrics.get(n, ("", "")))
        w.writerow([*vals, *_fixed(row), row.peak_mem_mb, row.note])
    return buf.getvalue()


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "–"
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:,.{digits}f}"


def to_markdown(rows: Sequence[Row], names: Sequence[str]) -> str:
    """Task metrics (no losses) as mean ± std, costs, and a status column for incomplete cells."""
    shown = [n for n in names if "loss" not in n] or list(names)
    header = ["#", "cell", "label", "seeds", *shown, "params", "train s", "train/s", "infer/s"]
    header.append("status")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i, row in enumerate(rows, 1):
        cells = [str(i), f"`{row.cell_id}`", row.label, f"{row.n_ok}/{row.n_runs}"]
        for n in shown:
            mean_sd = row.metrics.get(n)
            cells.append(f"{mean_sd[0]:.4f} ± {mean_sd[1]:.4f}" if mean_sd else "–")
        note = row.note if len(row.note) <= 100 else row.note[:97] + "..."
        cells += [
            _fmt(row.params_total),
            _fmt(row.train_seconds, 2),
            _fmt(row.train_samples_per_s, 0),
            _fmt(row.infer_samples_per_s, 0),
            row.status + (f": {note}" if note else ""),
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_leaderboard(out: Path, rows: Sequence[Row], names: Sequence[str]) -> None:
    """``leaderboard.csv`` and ``leaderboard.md`` in ``out``, written atomically."""
    io.write_text(out / "leaderboard.csv", to_csv(rows, names))
    io.write_text(out / "leaderboard.md", to_markdown(rows, names))

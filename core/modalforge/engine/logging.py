"""Run logs: one JSON object per line in ``metrics.jsonl``, TensorBoard scalars, a progress bar."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from modalforge.io import append_line, write_text

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"


class MetricLogger:
    """Appends ``{"step", "epoch", "split", <name>: value, "lr", "time", "elapsed"}`` lines.

    With ``tensorboard=True`` the same values go to ``<out>/tensorboard`` as ``<split>/<name>``.
    TensorBoard is imported only then.
    """

    def __init__(self, out_dir: str | Path | None, *, tensorboard: bool = False) -> None:
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.path = self.out_dir / METRICS_FILE if self.out_dir is not None else None
        self._tb_wanted = tensorboard and self.out_dir is not None
        self._tb = None
        self._start = time.time()
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)

    def log(
        self,
        *,
        step: int,
        epoch: int,
        split: str,
        values: Mapping[str, float],
        lr: float | None = None,
    ) -> dict[str, Any]:
        """Write one record; returns it."""
        now = time.time()
        record: dict[str, Any] = {"step": int(step), "epoch": int(epoch), "split": split}
        record.update({k: _finite_or_str(float(v)) for k, v in values.items()})
        if lr is not None:
            record["lr"] = float(lr)
        record["time"] = round(now, 3)
        record["elapsed"] = round(now - self._start, 3)
        if self.path is not None:
            append_line(self.path, json.dumps(record))
        writer = self._writer()
        if writer is not None:
            for k, v in values.items():
                writer.add_scalar(f"{split}/{k}", float(v), step)
            if lr is not None:
                writer.add_scalar(f"{split}/lr", float(lr), step)
        return record

    def truncate_after(self, step: int) -> None:
        """Drop lines logged after ``step`` (by a run that crashed past its last checkpoint)."""
        if self.path is None or not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except (json.JSONDecodeError, AttributeError):
                continue  # a line cut short by a crash
        write_text(self.path, "".join(line + "\n" for line in kept))

    def reset(self) -> None:
        """Start a fresh log (a new run in a folder whose previous run left no checkpoint)."""
        if self.path is not None and self.path.exists():
            self.path.unlink()

    def _writer(self):  # noqa: ANN202 - SummaryWriter is imported lazily
        if not self._tb_wanted:
            return None
        if self._tb is None:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(self.out_dir / TENSORBOARD_DIR))
        return self._tb

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _finite_or_str(v: float) -> float | str:
    """JSON has no NaN/inf: write them as strings so every line stays valid JSON."""
    return v if math.isfinite(v) else str(v)


class Progress:
    """A tqdm bar when enabled; otherwise a pass-through with the same methods."""

    def __init__(
        self,
        iterable: Iterable[Any],
        *,
        total: int | None,
        desc: str,
        enabled: bool,
        initial: int = 0,
    ) -> None:
        self._bar = None
        self._iterable = iterable
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                iterable, total=total, desc=desc, initial=initial, leave=False, dynamic_ncols=True
            )

    def __iter__(self) -> Iterator[Any]:
        return iter(self._bar if self._bar is not None else self._iterable)

    def set_postfix(self, values: Mapping[str, float]) -> None:
        if self._bar is not None:
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()}, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

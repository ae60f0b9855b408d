"""Bookkeeping of a run: device-side running means, divergence detection, the best checkpoint."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from modalforge.engine.config import TrainConfig
from modalforge.engine.distributed import DistContext
from modalforge.errors import ModalforgeError, SpecError

# Metric-name tokens for which lower is better (best_mode: auto).
LOWER_IS_BETTER = frozenset(
    {"loss", "error", "err", "mae", "mse", "rmse", "nll", "perplexity", "ppl", "ece", "fid",
     "wer", "cer", "distance", "hd95"}
)  # fmt: skip


class NonFiniteLossError(ModalforgeError):
    """The loss became NaN or infinite; training stopped before writing a damaged checkpoint."""


class RunningMeans:
    """Sums of logged values kept on the device, plus the first step whose values were not finite.

    Nothing here synchronises with the host except :meth:`first_bad` and :meth:`pop_means`, which
    the trainer calls only at log intervals and before evaluating or checkpointing.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, int] = {}
        self.bad = torch.full((), -1, dtype=torch.long, device=device)

    def add(self, values: Mapping[str, Any], step: int) -> None:
        vals = {
            k: torch.as_tensor(v, device=self.device).detach().float().mean()
            for k, v in values.items()
        }
        if not vals:
            return
        for k, v in vals.items():
            self.sums[k] = self.sums[k] + v if k in self.sums else v
            self.counts[k] = self.counts.get(k, 0) + 1
        finite = torch.stack(list(vals.values())).isfinite().all()
        self.bad = torch.where((self.bad < 0) & ~finite, step, self.bad)

    def synchronize(self, dist: DistContext) -> None:
        """Average the sums over processes and keep the first bad step of any (data parallel).

        Every process must have logged the same names; a no-op in a single process.
        """
        if not dist.enabled:
            return
        self.sums = dist.all_reduce_mean(self.sums)
        never = torch.iinfo(torch.long).max
        bad = dist.all_reduce_min(torch.where(self.bad < 0, never, self.bad))
        self.bad = torch.where(bad == never, -1, bad)

    def first_bad(self) -> int | None:
        bad = int(self.bad.item())
        return None if bad < 0 else bad

    def pop_means(self) -> dict[str, float]:
        if not self.sums:
            return {}
        keys = list(self.sums)
        values = torch.stack([self.sums[k] for k in keys]).tolist()
        means = {k: v / self.counts[k] for k, v in zip(keys, values, strict=True)}
        self.sums, self.counts = {}, {}
        return means

    def raise_if_diverged(self, epoch: int, last_checkpoint: Path | None) -> None:
        """A :class:`NonFiniteLossError` naming the first bad step and the last good checkpoint."""
        bad = self.first_bad()
        if bad is None:
            return
        where = (
            f"the last good checkpoint {last_checkpoint} is intact; resume from it with --resume "
            "after the fix"
            if last_checkpoint is not None
            else "no checkpoint had been written yet"
        )
        raise NonFiniteLossError(
            f"training loss became NaN or infinite at step {bad} (epoch {epoch + 1}); "
            "training stopped",
            hint=f"{where}; lower train.lr, set train.clip_grad_norm, prefer "
            "train.precision=bf16 over fp16, and check the data for NaN/inf values",
        )


def metric_mode(name: str, mode: str = "auto") -> str:
    """``min`` or ``max``; ``auto`` is ``min`` for loss- or error-like names (``eval_loss``)."""
    if mode != "auto":
        return mode
    tokens = set(re.split(r"[^a-z0-9]+", name.lower()))
    return "min" if tokens & LOWER_IS_BETTER else "max"


def update_best(
    best: dict[str, Any] | None,
    metrics: Mapping[str, float],
    cfg: TrainConfig,
    *,
    step: int,
    checkpoint: str,
) -> dict[str, Any] | None:
    """The best-checkpoint record after evaluating ``metrics`` at ``step`` (``best`` if no better).

    The metric is ``train.best_metric`` (default: the eval loss, when there is one).
    """
    if not metrics:
        return best
    name = cfg.best_metric or "loss"
    if name not in metrics:
        if cfg.best_metric is None:
            return best  # no eval loss (e.g. a generator): no best checkpoint by default
        raise SpecError(
            "train.best_metric",
            f"{name!r} is not among the evaluation results ({', '.join(sorted(metrics))})",
            hint="set train.best_metric to one of those names",
        )
    mode = metric_mode(name, cfg.best_mode)
    value = float(metrics[name])
    if not math.isfinite(value):
        return best
    prev = best["value"] if best and best.get("metric") == name else None
    if prev is None or (value < prev if mode == "min" else value > prev):
        return {"metric": name, "mode": mode, "value": value, "step": step,
                "checkpoint": checkpoint}  # fmt: skip
    return best

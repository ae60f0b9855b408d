"""PNG plots for run reports (matplotlib, headless Agg backend, written atomically)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from modalforge import io


def _pyplot():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:  # noqa: ANN001
    io.write_with(path, lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png"))
    _pyplot().close(fig)
    return path


def read_train_curve(metrics_jsonl: Path, key: str = "loss") -> tuple[list[int], list[float]]:
    """(steps, values) of ``key`` from the train lines of a run's ``metrics.jsonl``."""
    steps, values = [], []
    for line in Path(metrics_jsonl).read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if row.get("split") == "train" and key in row:
            steps.append(int(row["step"]))
            values.append(float(row[key]))
    return steps, values


def plot_loss_curve(steps: Sequence[int], losses: Sequence[float], path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, losses, lw=1.5)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.set_title("Training loss")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_confusion(
    labels: np.ndarray, preds: np.ndarray, class_names: Sequence[str], path: Path, title: str
) -> Path:
    """Row-normalised confusion matrix with counts in the cells."""
    from sklearn.metrics import confusion_matrix

    n = len(class_names)
    cm = confusion_matrix(labels, preds, labels=list(range(n)))
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                color = "white" if rates[i, j] > 0.5 else "black"
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7, color=color)
    return _save(fig, path)


def plot_retrieval_grid(
    queries: Sequence[str],
    images: np.ndarray,
    hits: Sequence[Sequence[bool]],
    scores: np.ndarray,
    path: Path,
) -> Path:
    """One row per text query with its top-k images; green frame = right class, red = wrong.

    ``images``: (Q, K, H, W) grey or (Q, K, H, W, 3) RGB in [0, 1]; ``scores``: (Q, K).
    """
    q, k = images.shape[:2]
    plt = _pyplot()
    fig, axes = plt.subplots(q, k, figsize=(1.3 * k + 2.2, 1.5 * q), squeeze=False)
    fig.subplots_adjust(hspace=0.45)
    for i in range(q):
        for j in range(k):
            ax = axes[i][j]
            ax.imshow(images[i, j], cmap="gray" if images.ndim == 4 else None, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_color("#1a9641" if hits[i][j] else "#d7191c")
                side.set_linewidth(3)
            ax.set_title(f"{scores[i, j]:.2f}", fontsize=7)
        axes[i][0].set_ylabel(queries[i], rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle("Text → image retrieval (top-k, cosine similarity)", fontsize=10)
    return _save(fig, path)


def plot_scatter(
    points: Sequence[tuple[str, float, float, float]],
    path: Path,
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    logx: bool = False,
) -> Path:
    """Labelled points ``(label, x, y, y_err)`` with vertical error bars (e.g. mean ± std)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for label, x, y, err in points:
        ax.errorbar([x], [y], yerr=[err], fmt="o", capsize=3, ms=5)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    if logx and points and min(p[1] for p in points) > 0:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(fig, path)

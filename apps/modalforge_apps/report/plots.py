"""PNG plots for run reports (matplotlib, headless Agg backend, written atomically)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
    """Labelled points ``(label, x, y, y_err)`` with vertical error bars (e.g. mean ± std).

    Labels that would overlap are moved apart vertically and joined to their point by a thin
    line, so a grid of similar cells stays readable.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for _label, x, y, err in points:
        ax.errorbar([x], [y], yerr=[err], fmt="o", capsize=3, ms=5)
    if logx and points and min(p[1] for p in points) > 0:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    place_labels(fig, ax, [(label, x, y) for label, x, y, _ in points])
    return _save(fig, path)


def place_labels(fig, ax, points: Sequence[tuple[str, float, float]]) -> list:  # noqa: ANN001
    """Annotate each point, dodging earlier labels' boxes downward in display space; returns
    the annotations."""
    fig.canvas.draw()  # fixes the axis limits so data → pixel is final
    renderer = fig.canvas.get_renderer()
    to_px = ax.transData.transform
    placed: list[tuple[float, float, float, float]] = []  # x0, y0, x1, y1 in pixels
    notes = []
    order = sorted(range(len(points)), key=lambda i: -to_px(points[i][1:])[1])
    for i in order:
        label, x, y = points[i]
        px, py = to_px((x, y))
        probe = ax.text(0, 0, label, fontsize=7)
        extent = probe.get_window_extent(renderer)
        probe.remove()
        width, line_h = extent.width, extent.height
        lx, ly = px + 5, py + 3
        for _ in range(len(points) + 1):
            box = (lx, ly, lx + width, ly + line_h)
            hit = next((b for b in placed if _overlap(box, b)), None)
            if hit is None:
                break
            ly = hit[1] - line_h - 1
        placed.append((lx, ly, lx + width, ly + line_h))
        moved = abs(ly - (py + 3)) > 1
        note = ax.annotate(
            label,
            (x, y),
            xytext=(lx - px, ly - py),
            textcoords="offset pixels",
            fontsize=7,
            va="bottom",
            arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "0.5"} if moved else None,
        )
        notes.append(note)
    return notes


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def plot_curves(
    panels: dict[str, dict[str, tuple[Sequence[float], Sequence[float], Sequence[float]]]],
    path: Path,
    *,
    xlabel: str,
    ylabel: str,
    title: str,
) -> Path:
    """One panel per key of ``panels``, each with lines ``label → (x, mean, std)`` and a ±std
    band; one legend for all panels (the same labels in each)."""
    plt = _pyplot()
    n = max(len(panels), 1)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n + 2.8, 3.8), squeeze=False, sharey=True)
    cmap = plt.get_cmap("tab10")
    labels = list(dict.fromkeys(lbl for lines in panels.values() for lbl in lines))
    colors = {lbl: cmap(i % 10) for i, lbl in enumerate(labels)}
    styles = {lbl: ("-", "--", ":")[(i // 10) % 3] for i, lbl in enumerate(labels)}
    for ax, (panel, lines) in zip(axes[0], panels.items(), strict=False):
        for lbl, (xs, mean, std) in lines.items():
            m, s = np.asarray(mean, float), np.asarray(std, float)
            ax.plot(xs, m, marker="o", ms=3, lw=1.3, color=colors[lbl], ls=styles[lbl], label=lbl)
            ax.fill_between(xs, m - s, m + s, color=colors[lbl], alpha=0.07, lw=0)
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    legend: dict[str, Any] = {}
    for ax in axes[0]:
        for handle, name in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(name, handle)
    fig.legend(
        list(legend.values()),
        list(legend),
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        fontsize=7,
    )
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_grouped_bars(
    groups: dict[str, dict[str, tuple[float, float]]],
    path: Path,
    *,
    ylabel: str,
    title: str,
    reference: dict[str, tuple[float, float]] | None = None,
) -> Path:
    """Bars ``label → group → (mean, std)``: one cluster per label, one bar per group; an
    optional ``reference`` per label (e.g. clean accuracy) is drawn as a short black line."""
    plt = _pyplot()
    labels = list(dict.fromkeys(lbl for bars in groups.values() for lbl in bars))
    names = list(groups)
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(labels) + 2), 4.2))
    xs = np.arange(len(labels))
    for j, name in enumerate(names):
        vals = [groups[name].get(lbl, (np.nan, 0.0)) for lbl in labels]
        ax.bar(
            xs + (j - (len(names) - 1) / 2) * width,
            [v[0] for v in vals],
            width,
            yerr=[v[1] for v in vals],
            capsize=2,
            label=name,
        )
    if reference:
        for i, lbl in enumerate(labels):
            if lbl in reference:
                ax.hlines(reference[lbl][0], i - 0.42, i + 0.42, color="black", lw=1.2)
    ax.set_xticks(xs, labels, rotation=40, ha="right", fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(fig, path)


def plot_sample_grid(
    prompts: Sequence[str],
    images: np.ndarray,
    path: Path,
    *,
    scores: Any = None,
    title: str = "",
) -> Path:
    """Generated images ``(P, K, C, H, W)`` in [0, 1], one row per prompt; each image titled
    with its score when ``scores (P, K)`` is given."""
    p, k = images.shape[:2]
    plt = _pyplot()
    fig, axes = plt.subplots(p, k, figsize=(1.1 * k + 2.4, 1.25 * p + 0.6), squeeze=False)
    for i in range(p):
        for j in range(k):
            ax = axes[i][j]
            img = np.clip(images[i, j], 0, 1)
            if img.shape[0] == 1:
                ax.imshow(img[0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            else:
                ax.imshow(img.transpose(1, 2, 0), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if scores is not None:
                ax.set_title(f"{float(scores[i][j]):.3f}", fontsize=7)
        axes[i][0].set_ylabel(prompts[i], rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97) if title else None)
    return _save(fig, path)

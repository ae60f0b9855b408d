"""Saliency figures (2-D overlay, 3-D slice grid) and an HTML section any report can include.

:func:`plot_explanation` draws a :class:`modalforge.evaluation.saliency.Explanation`: a 2-D image
beside the image with its saliency overlay, or for a volume ``(C, D, H, W)`` a grid of 12 axial
slices evenly spaced through the depth plus a row through the saliency maximum (axial, coronal,
sagittal) and the axial maximum-intensity projection. :func:`saliency_section` is the HTML block
(prediction, probability, label, method, figure) used by ``modalforge explain`` and run reports.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modalforge_apps.report.html import figure_html
from modalforge_apps.report.plots import _pyplot, _save

AXIAL_ROWS, AXIAL_COLS = 3, 4


@dataclass(frozen=True)
class SaliencyFigure:
    """One explained sample as the report shows it."""

    png: Path
    sample: str  # the sample's id or index
    predicted: str
    probability: float  # of the explained class
    explained: str  # the class the map explains
    label: str
    method: str
    modality: str
    layer: str | None = None


def _display(image: np.ndarray) -> np.ndarray:
    """``(C, *spatial)`` → grey ``(*spatial)`` or RGB ``(*spatial, 3)``, scaled to [0, 1] between
    the 1st and 99th percentiles."""
    img = image.transpose(*range(1, image.ndim), 0) if image.shape[0] == 3 else image[0]
    low, high = np.percentile(img, [1, 99])
    return np.clip((img - low) / (high - low), 0, 1) if high > low else np.zeros_like(img)


def _overlay(ax, image: np.ndarray, saliency: np.ndarray, title: str):  # noqa: ANN001, ANN202
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
    shown = ax.imshow(saliency, cmap="jet", vmin=0, vmax=1, alpha=np.clip(0.7 * saliency, 0, 1))
    ax.set_title(title, fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])
    return shown


def plot_saliency_2d(image: np.ndarray, saliency: np.ndarray, path: Path, title: str) -> Path:
    """``image`` ``(C, H, W)`` beside it with ``saliency`` ``(H, W)`` in [0, 1] overlaid."""
    plt = _pyplot()
    shown_img = _display(image)
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.6), layout="constrained")
    axes[0].imshow(shown_img, cmap="gray" if shown_img.ndim == 2 else None, vmin=0, vmax=1)
    axes[0].set_title("input", fontsize=8)
    axes[0].set_xticks([])
    axes[0].set_yticks([])
    mappable = _overlay(axes[1], shown_img, saliency, "saliency")
    fig.colorbar(mappable, ax=axes, shrink=0.9, label="saliency")
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def slice_indices(depth: int, count: int = AXIAL_ROWS * AXIAL_COLS) -> list[int]:
    """``count`` axial slice indices evenly spaced through ``depth`` (fewer if it is thinner)."""
    return sorted({int(round(i)) for i in np.linspace(0, depth - 1, count)})


def plot_saliency_volume(image: np.ndarray, saliency: np.ndarray, path: Path, title: str) -> Path:
    """``image`` ``(C, D, H, W)`` with ``saliency`` ``(D, H, W)`` overlaid: 3×4 axial slices,
    then the axial, coronal and sagittal slices through the saliency maximum and the axial
    maximum-intensity projection of the saliency."""
    plt = _pyplot()
    vol = _display(image[:1])  # first channel, (D, H, W)
    depth = vol.shape[0]
    z, y, x = (int(i) for i in np.unravel_index(int(np.argmax(saliency)), saliency.shape))
    fig, axes = plt.subplots(
        AXIAL_ROWS + 1, AXIAL_COLS, figsize=(8.4, 8.6), squeeze=False, layout="constrained"
    )
    for ax in axes.flat:
        ax.axis("off")
    mappable = None
    for ax, d in zip(axes[:AXIAL_ROWS].flat, slice_indices(depth), strict=False):
        ax.axis("on")
        mappable = _overlay(ax, vol[d], saliency[d], f"axial z={d}")
    through_max = [
        (vol[z], saliency[z], f"axial z={z} (max)"),
        (vol[:, y, :], saliency[:, y, :], f"coronal y={y} (max)"),
        (vol[:, :, x], saliency[:, :, x], f"sagittal x={x} (max)"),
        (vol.max(axis=0), saliency.max(axis=0), "axial max projection"),
    ]
    for ax, (img, sal, name) in zip(axes[AXIAL_ROWS], through_max, strict=True):
        ax.axis("on")
        mappable = _overlay(ax, img, sal, name)
    fig.colorbar(mappable, ax=axes, shrink=0.6, label="saliency")
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def plot_explanation(explanation, path: Path, title: str) -> Path:  # noqa: ANN001
    """The figure for an ``Explanation``: an overlay (2-D) or a slice grid (3-D)."""
    image = explanation.image.numpy()
    saliency = explanation.saliency.numpy()
    if saliency.ndim == 2:
        return plot_saliency_2d(image, saliency, path, title)
    if saliency.ndim == 3:
        return plot_saliency_volume(image, saliency, path, title)
    raise ValueError(f"saliency maps are 2-D or 3-D, got shape {saliency.shape}")


def saliency_section(figures: Sequence[SaliencyFigure], heading: str = "Saliency maps") -> str:
    """HTML: per sample a table (prediction, probability, label, method) and its figure."""
    parts = [f"<h2>{html.escape(heading)}</h2>"]
    for f in figures:
        rows = {
            "prediction": f.predicted,
            f"probability of {f.explained}": f"{f.probability:.3f}",
            "label": f.label,
            "method": f.method + (f" (layer {f.layer})" if f.layer else ""),
            "modality": f.modality,
        }
        table = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows.items()
        )
        caption = f"sample {f.sample}: {f.method} saliency of class {f.explained}"
        parts.append(
            f'<section class="saliency"><h3>sample {html.escape(f.sample)}</h3>'
            f"<table>{table}</table>{figure_html(f.png, caption)}</section>"
        )
    return "\n".join(parts)

"""Static run reports: PNG plots and one self-contained HTML page."""

from modalforge_apps.report.html import figure_html, page_html, write_report
from modalforge_apps.report.plots import (
    plot_confusion,
    plot_curves,
    plot_grouped_bars,
    plot_loss_curve,
    plot_retrieval_grid,
    plot_scatter,
    read_train_curve,
)
from modalforge_apps.report.saliency import SaliencyFigure, plot_explanation, saliency_section

__all__ = [
    "SaliencyFigure",
    "figure_html",
    "page_html",
    "plot_confusion",
    "plot_curves",
    "plot_explanation",
    "plot_grouped_bars",
    "plot_loss_curve",
    "plot_retrieval_grid",
    "plot_scatter",
    "read_train_curve",
    "saliency_section",
    "write_report",
]

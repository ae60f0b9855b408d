"""``report.html`` for a benchmark: the leaderboard and metric-vs-cost scatter plots, one file.

Seam for later work: robustness curves (metric vs missing-modality rate) will add figures via
``extra_figures`` once ``modalforge.evaluation.robustness`` lands; nothing here depends on it.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from modalforge import io
from modalforge_apps.bench.results import Row, to_markdown
from modalforge_apps.report import figure_html, page_html, plot_scatter


def scatter_plots(rows: Sequence[Row], metric: str, plots_dir: Path) -> list[tuple[Path, str]]:
    """``metric`` vs parameters and vs train time (mean ± std over seeds); cells lacking either
    value are left out."""
    figures = []
    for attr, xlabel, fname, logx in (
        ("params_total", "parameters", "metric_vs_params.png", True),
        ("train_seconds", "train time (s, mean over seeds)", "metric_vs_train_time.png", False),
    ):
        points = [
            (r.label, float(getattr(r, attr)), *r.metrics[metric])
            for r in rows
            if metric in r.metrics and getattr(r, attr) is not None
        ]
        if not points:
            continue
        path = plot_scatter(
            points,
            plots_dir / fname,
            xlabel=xlabel,
            ylabel=metric,
            title=f"{metric} vs {xlabel}",
            logx=logx,
        )
        figures.append((path, f"{metric} (mean ± std over seeds) vs {xlabel}"))
    return figures


def write_bench_report(
    path: Path,
    *,
    name: str,
    rows: Sequence[Row],
    names: Sequence[str],
    notes: Sequence[str] = (),
    extra_figures: Sequence[tuple[Path, str]] = (),
) -> Path:
    """Write the self-contained report; PNGs go to ``<path's folder>/plots``."""
    metric = next((n for n in names if "loss" not in n), next(iter(names), None))
    figures = scatter_plots(rows, metric, path.parent / "plots") if metric else []
    figures += list(extra_figures)
    table = _table(rows, names)
    body = [
        f"<p>{len(rows)} cells; mean ± sample std over seeds. Ranked by "
        f"<code>{html.escape(str(metric))}</code>.</p>",
        "<h2>Leaderboard</h2>",
        table,
        "<h2>Plots</h2>",
        *(figure_html(p, c) for p, c in figures),
    ]
    if notes:
        body += ["<h2>Notes</h2><ul>", *(f"<li>{html.escape(n)}</li>" for n in notes), "</ul>"]
    io.write_text(path, page_html(f"Benchmark: {name}", "\n".join(body)))
    return path


def _table(rows: Sequence[Row], names: Sequence[str]) -> str:
    """The Markdown leaderboard as an HTML table (same columns, escaped)."""
    lines = to_markdown(rows, names).splitlines()
    out = ["<table>"]
    for i, line in enumerate(lines):
        if i == 1:
            continue
        cells = [c.strip().replace("\\|", "|") for c in line.strip("|").split(" | ")]
        tag = "th" if i == 0 else "td"
        out.append("<tr>" + "".join(f"<{tag}>{html.escape(c.strip('`'))}</{tag}>" for c in cells))
    out.append("</table>")
    return "".join(out)

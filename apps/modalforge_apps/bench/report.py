"""``report.html`` for a benchmark: the leaderboard, metric-vs-cost scatter plots and the
robustness curves (metric vs noise level per modality, metric with each modality missing)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modalforge import io
from modalforge_apps.bench.results import Row, latest_runs, mean_std, to_markdown
from modalforge_apps.report import (
    figure_html,
    page_html,
    plot_curves,
    plot_grouped_bars,
    plot_scatter,
)


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


Curve = tuple[list[float], list[float], list[float]]  # x, mean, std


def robustness_series(
    records: Sequence[dict[str, Any]], rows: Sequence[Row]
) -> tuple[str, dict[str, dict[str, Curve]], dict[str, dict[str, tuple[float, float]]], dict]:
    """(metric, noise curves ``"noise on m" → label → curve``, missing ``"m missing" → label →
    (mean, std)``, clean ``label → (mean, std)``), over the ok seeds of each cell in ``rows``
    order. Cells without robustness records (non-classification tasks) are left out."""
    by_cell: dict[str, list[dict[str, Any]]] = {}
    for rec in latest_runs(records):
        if rec.get("status") == "ok" and isinstance(rec.get("robustness"), dict):
            by_cell.setdefault(rec["cell_id"], []).append(rec["robustness"])
    ordered = [(r.label or r.cell_id, by_cell[r.cell_id]) for r in rows if r.cell_id in by_cell]
    panels: dict[str, dict[str, Curve]] = {}
    missing: dict[str, dict[str, tuple[float, float]]] = {}
    clean: dict[str, tuple[float, float]] = {}
    for label, robs in ordered:
        clean[label] = mean_std([float(r["clean"]) for r in robs])
        for mod in robs[0].get("noise", {}):
            levels = sorted(robs[0]["noise"][mod], key=float)
            stats = [mean_std([float(r["noise"][mod][lv]) for r in robs]) for lv in levels]
            panels.setdefault(f"noise on {mod}", {})[label] = (
                [float(lv) for lv in levels],
                [m for m, _ in stats],
                [sd for _, sd in stats],
            )
        for mod in robs[0].get("missing", {}):
            vals = [float(r["missing"][mod]) for r in robs if mod in r.get("missing", {})]
            missing.setdefault(f"{mod} missing", {})[label] = mean_std(vals)
    metric = ordered[0][1][0].get("metric", "accuracy") if ordered else "accuracy"
    return metric, panels, missing, clean


def robustness_plots(
    records: Sequence[dict[str, Any]], rows: Sequence[Row], plots_dir: Path
) -> list[tuple[Path, str]]:
    """Noise curves (one panel per modality, one line per cell, mean ± std over seeds) and the
    metric with each modality missing, as figures for the report (none without records)."""
    metric, panels, missing, clean = robustness_series(records, rows)
    figures = []
    if panels:
        figures.append(
            (
                plot_curves(
                    panels,
                    plots_dir / "robustness_noise.png",
                    xlabel="noise std (× the input's std)",
                    ylabel=metric,
                    title=f"{metric} under noise on one modality",
                ),
                f"Robustness: {metric} (mean ± std over seeds) vs the noise level added to each "
                "modality; the area under each curve is the leaderboard's noise_auc_<modality>",
            )
        )
    if missing:
        figures.append(
            (
                plot_grouped_bars(
                    missing,
                    plots_dir / "robustness_missing.png",
                    ylabel=metric,
                    title=f"{metric} with one modality missing (black line: all present)",
                    reference=clean,
                ),
                f"Robustness: {metric} with each modality removed (mask False), against the "
                "clean score",
            )
        )
    return figures


def write_bench_report(
    path: Path,
    *,
    name: str,
    rows: Sequence[Row],
    names: Sequence[str],
    notes: Sequence[str] = (),
    extra_figures: Sequence[tuple[Path, str]] = (),
    over: str = "seeds",
) -> Path:
    """Write the self-contained report; PNGs go to ``<path's folder>/plots``. ``over`` says what
    a cell's runs vary (seeds, or seeds × folds)."""
    metric = next((n for n in names if "loss" not in n), next(iter(names), None))
    figures = scatter_plots(rows, metric, path.parent / "plots") if metric else []
    figures += list(extra_figures)
    table = _table(rows, names)
    body = [
        f"<p>{len(rows)} cells; mean ± sample std over {html.escape(over)}. Ranked by "
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
    out = ['<div class="wide"><table>']
    for i, line in enumerate(lines):
        if i == 1:
            continue
        cells = [c.strip().replace("\\|", "|") for c in line.strip("|").split(" | ")]
        tag = "th" if i == 0 else "td"
        out.append("<tr>" + "".join(f"<{tag}>{html.escape(c.strip('`'))}</{tag}>" for c in cells))
    out.append("</table></div>")
    return "".join(out)

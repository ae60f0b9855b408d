"""``report.html`` of a generation benchmark: the judged numbers against the targets, and grids."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modalforge import io
from modalforge_apps.report import figure_html, page_html


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else html.escape(str(value))


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(generator, measure, value)`` lines of the headline numbers."""
    rows = []
    floor = results["kid_floor"]["mean"]
    for name, res in results["generators"].items():
        plain, best = res["plain"], res.get("best_of")
        if "accuracy" in plain:
            rows.append((name, "judged accuracy (plain samples)", _fmt(plain["accuracy"])))
            if best:
                rows.append(
                    (name, f"judged accuracy (best of {best['k']})", _fmt(best["accuracy"]))
                )
        for group in ("seen", "held_out"):
            if group in plain:
                for attr, value in plain[group].items():
                    rows.append((name, f"{group}: {attr} accuracy (plain)", _fmt(value)))
                if best and group in best:
                    for attr, value in best[group].items():
                        rows.append(
                            (name, f"{group}: {attr} accuracy (best of {best['k']})", _fmt(value))
                        )
        kid = res["kid"]
        # balanced real sets often give an unbiased KID below 0: report the difference, also
        # in units of the floor's spread over subsets
        value = f"{kid['mean']:.5f} ± {kid['std']:.5f} ({kid['mean'] - floor:+.5f}"
        if kid.get("floor_stds") is not None:
            value += f", {kid['floor_stds']:+.2f} floor std"
        rows.append((name, "KID vs real test (− floor)", value + ")"))
        for key, value in (res.get("clip_eval") or {}).items():
            rows.append((name, f"{key} (independent CLIP)", _fmt(value)))
        if res.get("train_seconds") is not None:
            rows.append((name, "train seconds", f"{res['train_seconds']:.1f}"))
        rows.append((name, "sampling seconds", f"{res['sample_seconds']:.2f}"))
    for key, value in (results.get("clip_eval_real_test") or {}).items():
        rows.append(("real test", f"{key} (independent CLIP)", _fmt(value)))
    return rows


def write_genbench_report(
    path: Path, results: dict[str, Any], grids: dict[str, Sequence[tuple[Path, str]]]
) -> Path:
    floor = results["kid_floor"]
    body = [
        f"<p>Judge: <code>{html.escape(results['judge']['name'])}</code>, trained on real data "
        f"only. {results['prompts']} prompts. KID floor (real train vs real test, same "
        f"features): {floor['mean']:.5f} ± {floor['std']:.5f}.</p>",
        "<h2>Judged numbers</h2><table><tr><th>generator</th><th>measure</th><th>value</th></tr>",
        *(
            f"<tr><td>{html.escape(g)}</td><td>{html.escape(m)}</td><td class=num>{v}</td></tr>"
            for g, m, v in summary_rows(results)
        ),
        "</table>",
    ]
    for name, figs in grids.items():
        body.append(f"<h2>{html.escape(name)}</h2>")
        body += [figure_html(p, c) for p, c in figs]
    io.write_text(path, page_html(f"Generation benchmark: {results['name']}", "\n".join(body)))
    return path

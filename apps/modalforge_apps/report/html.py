"""A static, self-contained HTML report: a metrics table and plots embedded as data URIs."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path

from modalforge import io

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.35em .8em}
th{background:#f3f3f3;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.ok{color:#1a7f37}td.miss{color:#c62828}figure{margin:1.5em 0}img{max-width:100%}
.wide{overflow-x:auto}.wide table{font-size:.8em}
.wide td,.wide th{white-space:nowrap;padding:.3em .5em}
figcaption{color:#555;font-size:.9em}code{background:#f5f5f5;padding:0 .2em}
"""


def figure_html(png: Path, caption: str) -> str:
    """A ``<figure>`` with the PNG embedded as a data URI (no files or network needed)."""
    data = base64.b64encode(Path(png).read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(caption)} (<code>{html.escape(Path(png).name)}</code>)"
        "</figcaption></figure>"
    )


def page_html(title: str, body: str) -> str:
    """A complete standalone page with the report style."""
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def write_report(
    path: Path,
    *,
    title: str,
    intro: str,
    metrics: Mapping[str, tuple[float, float | None]],
    figures: Sequence[tuple[Path, str]],
    details: Mapping[str, str] | None = None,
) -> Path:
    """Write ``path``. ``metrics`` maps a name to ``(value, target or None)``; ``figures`` are
    ``(png path, caption)``, embedded so the page is one file that needs no network."""
    rows = []
    for name, (value, target) in metrics.items():
        status, cls = "", ""
        if target is not None:
            met = value >= target
            status, cls = ("met" if met else "missed"), ("ok" if met else "miss")
        tgt = "" if target is None else f"≥ {target:g}"
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td class=num>{value:.4f}</td>"
            f"<td class=num>{tgt}</td><td class={cls}>{status}</td></tr>"
        )
    figs = [figure_html(png, caption) for png, caption in figures]
    info = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in (details or {}).items()
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_STYLE}</style></head><body>
<h1>{html.escape(title)}</h1><p>{html.escape(intro)}</p>
<h2>Held-out metrics</h2>
<table><tr><th>metric</th><th>value</th><th>target</th><th></th></tr>{"".join(rows)}</table>
{"<h2>Run</h2><table>" + info + "</table>" if info else ""}
<h2>Plots</h2>{"".join(figs)}
</body></html>
"""
    io.write_text(path, page)
    return path

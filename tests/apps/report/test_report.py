import base64
import json
import re

import numpy as np

from modalforge_apps.report import (
    plot_confusion,
    plot_loss_curve,
    plot_retrieval_grid,
    read_train_curve,
    write_report,
)

PNG = b"\x89PNG\r\n\x1a\n"


def _png_size(path) -> tuple[int, int]:  # noqa: ANN001
    data = path.read_bytes()
    assert data[:8] == PNG
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_train_curve_reads_only_train_lines(tmp_path):
    log = tmp_path / "metrics.jsonl"
    rows = [
        {"step": 10, "split": "train", "loss": 2.0},
        {"step": 10, "split": "test", "loss": 9.0},
        {"step": 20, "split": "train", "loss": 1.0},
    ]
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n{truncated")
    assert read_train_curve(log) == ([10, 20], [2.0, 1.0])


def test_plots_are_pngs(tmp_path):
    w, h = _png_size(plot_loss_curve([1, 2, 3], [3.0, 2.0, 1.0], tmp_path / "loss.png"))
    assert w > 300 and h > 200
    labels = np.array([0, 1, 2, 2])
    _png_size(
        plot_confusion(
            labels, np.array([0, 1, 1, 2]), ["a", "b", "c"], tmp_path / "cm.png", "confusion"
        )
    )
    images = np.random.default_rng(0).random((2, 3, 8, 8))
    hits = [[True, False, True], [True, True, True]]
    _png_size(plot_retrieval_grid(["q1", "q2"], images, hits, np.ones((2, 3)), tmp_path / "g.png"))
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_report_embeds_figures_and_marks_targets(tmp_path):
    png = plot_loss_curve([1, 2], [1.0, 0.5], tmp_path / "loss.png")
    page = write_report(
        tmp_path / "report.html",
        title="Demo <run>",
        intro="intro",
        metrics={
            "zeroshot_top1": (0.93, 0.9),
            "retrieval_t2i_r1": (0.8, 0.85),
            "secs": (3.0, None),
        },
        figures=[(png, "Training loss")],
        details={"spec": "x.yaml"},
    ).read_text()
    assert "<title>Demo &lt;run&gt;</title>" in page
    assert re.search(
        r"zeroshot_top1</td><td class=num>0.9300</td><td class=num>≥ 0.9</td>"
        r"<td class=ok>met",
        page,
    )
    assert "<td class=miss>missed" in page
    encoded = re.search(r'src="data:image/png;base64,([^"]+)"', page).group(1)
    assert base64.b64decode(encoded) == png.read_bytes()
    assert "http" not in page  # nothing fetched from the network

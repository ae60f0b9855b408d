"""The ``modalforge explain`` page opens in a real browser: headless Chromium renders it to a
screenshot, which must show the page and, in it, the coloured, non-uniform saliency overlay.

Chromium comes from Debian's ``chromium`` package (``make system-deps``). Without it the test is
skipped locally and FAILS under ``CI=true``, so CI cannot pass without looking at the page.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from modalforge.plugin import set_host
from modalforge_apps.cli import main
from tests.core.evaluation import saliency_toy as toy


@pytest.fixture
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        reason = "chromium is not installed (run `make system-deps`, or apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}: CI must render the report in a browser")
        pytest.skip(f"{reason}; the report is not rendered in a browser")
    return path


def screenshot(chromium: str, page, shot, tmp_path) -> np.ndarray:  # noqa: ANN001
    """``page`` rendered by headless Chromium at 1200×1600, as an (H, W, 3) uint8 array."""
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        f"--screenshot={shot}",
        "--window-size=1200,1600",
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert shot.is_file(), f"chromium wrote no screenshot (exit {done.returncode}): {done.stderr}"
    return np.asarray(Image.open(shot).convert("RGB"))


def test_explain_report_renders_with_its_saliency_overlay(chromium, tmp_path):
    set_host(None)
    spec, run = toy.hand_set_run(tmp_path)
    out = tmp_path / "explain"
    argv = ["explain", str(spec), "--checkpoint", str(run), "--sample", "0", "--out", str(out)]
    assert main(argv) == 0
    pixels = screenshot(chromium, out / "report.html", tmp_path / "shot.png", tmp_path)
    assert pixels.shape == (1600, 1200, 3)
    assert pixels.std() > 10  # not a blank page
    dark = (pixels.max(axis=2) < 80).sum()
    assert dark > 2000  # text (title, table) was drawn
    # the PNG that explain wrote appears in the page, pixel for pixel (shown at natural size)
    figure = np.asarray(Image.open(out / "sample_0_gradcam.png").convert("RGB"))
    where = locate(pixels, figure)
    assert where is not None, "the saliency figure does not appear in the screenshot"
    y, x = where
    h, w = figure.shape[:2]
    shown = pixels[y : y + h, x : x + w].astype(int)
    overlay = shown[:, w // 2 :]  # right half: the saliency overlay and its colour bar
    assert overlay.std() > 25  # not a uniform block
    coloured = (overlay.max(axis=2) - overlay.min(axis=2)) > 80
    assert coloured.sum() > 1000  # the colour map is drawn
    assert len(np.unique(overlay[coloured] // 64, axis=0)) >= 4  # several colours, not one


def locate(
    pixels: np.ndarray, figure: np.ndarray, tolerance: float = 4.0
) -> tuple[int, int] | None:
    """Top-left ``(y, x)`` where ``figure`` appears in ``pixels`` (mean absolute difference below
    ``tolerance``), found from the figure's most saturated pixel; ``None`` if nowhere."""
    fig, page = figure.astype(int), pixels.astype(int)
    h, w = fig.shape[:2]
    sat = fig.max(axis=2) - fig.min(axis=2)
    fy, fx = np.unravel_index(int(np.argmax(sat)), sat.shape)
    ys, xs = np.nonzero((np.abs(page - fig[fy, fx]) <= 3).all(axis=2))
    for y, x in zip((ys - fy)[:5000].tolist(), (xs - fx)[:5000].tolist(), strict=True):
        inside = 0 <= y <= page.shape[0] - h and 0 <= x <= page.shape[1] - w
        if inside and np.abs(page[y : y + h, x : x + w] - fig).mean() < tolerance:
            return y, x
    return None

"""The ``modalforge rollout`` page opens in a real browser: headless Chromium's screenshot shows
the summary table and the GIF grid — one of its frames, pixel for pixel, with every episode
framed green (the scripted expert succeeds in each).

Like the saliency page's test it FAILS under ``CI=true`` without Chromium (``make system-deps``).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageSequence

from modalforge_apps.cli import main
from modalforge_apps.report.rollout import SUCCESS_RGB
from tests.apps.report.test_saliency_chromium import chromium, locate, screenshot  # noqa: F401

GREEN = np.array(SUCCESS_RGB)


def test_rollout_report_renders_the_gif_grid(chromium, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "rollout"
    argv = ["rollout", "--policy", "expert", "--env", "tabletop_reach", "--episodes", "4"]
    assert main([*argv, "--record", "4", "--num-envs", "2", "--out", str(out)]) == 0
    capsys.readouterr()
    pixels = screenshot(chromium, out / "report.html", tmp_path / "shot.png", tmp_path)
    assert pixels.std() > 10 and (pixels.max(axis=2) < 80).sum() > 2000  # a page with text
    gif = Image.open(out / "episodes.gif")
    frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(gif)]
    # the browser shows whichever frame the animation is at: find one of them
    found = next(
        ((i, where) for i, f in enumerate(frames) if (where := locate(pixels, f)) is not None),
        None,
    )
    assert found is not None, "no frame of the GIF grid appears in the screenshot"
    i, (y, x) = found
    h, w = frames[i].shape[:2]
    shown = pixels[y : y + h, x : x + w].astype(int)
    border = shown[:2].reshape(-1, 3)  # the tiles' top border rows
    assert (np.abs(border - GREEN).max(axis=1) < 40).mean() > 0.9  # all four framed green

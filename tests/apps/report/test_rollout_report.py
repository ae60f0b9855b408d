"""The rollout GIF grid read back with PIL: tiles, outcome frames, lengths; the HTML section."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from PIL import Image, ImageSequence

from modalforge_apps.report.rollout import FAILURE_RGB, SUCCESS_RGB, gif_grid, rollout_section


def _episode(length: int, value: int) -> list[np.ndarray]:
    return [np.full((3, 5, 3), (value + 10 * t) % 256, np.uint8) for t in range(length)]


def test_gif_grid_tiles_frames_and_outcomes(tmp_path):
    episodes = [_episode(4, 0), _episode(2, 100), _episode(3, 200)]
    path = gif_grid(episodes, [True, False, True], tmp_path / "r.gif", columns=2, scale=2, border=1)
    gif = Image.open(path)
    frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(gif)]
    assert len(frames) == 4  # the longest episode
    assert frames[0].shape == (2 * (3 * 2 + 2), 2 * (5 * 2 + 2), 3)  # 2 rows × 2 columns
    tile_h, tile_w = 8, 12
    assert tuple(frames[0][0, 0]) == SUCCESS_RGB  # episode 0's frame
    assert tuple(frames[0][0, tile_w]) == FAILURE_RGB  # episode 1
    # inside the tiles: each episode's frame t, the short one holding its last frame
    assert frames[3][1 + 2, 1 + 3, 0] == 30  # episode 0 at t = 3
    assert frames[3][1, tile_w + 1, 0] == 110  # episode 1 stays at its t = 1
    assert frames[1][tile_h + 1, 1, 0] == 210  # episode 2 at t = 1
    assert np.all(frames[0][tile_h:, tile_w:] == 255)  # the empty fourth cell
    html = rollout_section(path, {"success rate": "0.667 [0.208, 0.939]"})
    assert "success rate" in html and "0.667 [0.208, 0.939]" in html
    assert base64.b64encode(path.read_bytes()).decode() in html
    listed = rollout_section(path, {}, tiles=[("reach the <red> block", True), ("", False)])
    assert "<li>reach the &lt;red&gt; block — success</li>" in listed  # escaped, in grid order
    assert "<li>(no instruction) — failure</li>" in listed
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_gif_grid_refuses_empty_or_mismatched_episodes(tmp_path):
    with pytest.raises(ValueError, match="at least one frame"):
        gif_grid([[]], [True], tmp_path / "a.gif")
    with pytest.raises(ValueError, match="2 outcomes for 1 episodes"):
        gif_grid([_episode(1, 0)], [True, False], tmp_path / "a.gif")
    other = [np.zeros((4, 4, 3), np.uint8)]
    with pytest.raises(ValueError, match="episode 1 has frames"):
        gif_grid([_episode(1, 0), other], [True, True], tmp_path / "a.gif")

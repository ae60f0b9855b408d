"""Rollout figures: an animated GIF grid of recorded episodes and the HTML section that shows it
with the success rate, returns and lengths.

Each tile is one episode's frames, framed green if it succeeded and red if not; episodes that end
early hold their last frame, so the grid plays as long as the longest episode.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from modalforge import io

SUCCESS_RGB = (26, 160, 60)
FAILURE_RGB = (200, 40, 40)


def gif_grid(
    episodes: Sequence[Sequence[np.ndarray]],
    successes: Sequence[bool],
    path: Path,
    *,
    columns: int = 4,
    scale: int = 2,
    border: int = 2,
    fps: int = 10,
) -> Path:
    """Write ``path``: the episodes' ``(H, W, 3)`` uint8 frames tiled ``columns`` wide, each
    tile scaled ``scale`` times (nearest) and framed by its outcome, at ``fps`` frames a second."""
    from PIL import Image

    if not episodes or any(len(frames) == 0 for frames in episodes):
        raise ValueError("every episode of a GIF grid needs at least one frame")
    if len(successes) != len(episodes):
        raise ValueError(f"{len(successes)} outcomes for {len(episodes)} episodes")
    h, w = np.asarray(episodes[0][0]).shape[:2]
    tile_h, tile_w = h * scale + 2 * border, w * scale + 2 * border
    cols = min(columns, len(episodes))
    rows = math.ceil(len(episodes) / cols)
    length = max(len(frames) for frames in episodes)
    images = []
    for t in range(length):
        canvas = np.full((rows * tile_h, cols * tile_w, 3), 255, np.uint8)
        for i, (frames, ok) in enumerate(zip(episodes, successes, strict=True)):
            frame = np.asarray(frames[min(t, len(frames) - 1)], dtype=np.uint8)
            if frame.shape[:2] != (h, w):
                raise ValueError(f"episode {i} has frames of {frame.shape[:2]}, not {(h, w)}")
            r, c = divmod(i, cols)
            tile = canvas[r * tile_h : (r + 1) * tile_h, c * tile_w : (c + 1) * tile_w]
            tile[:] = SUCCESS_RGB if ok else FAILURE_RGB
            tile[border : border + h * scale, border : border + w * scale] = frame.repeat(
                scale, 0
            ).repeat(scale, 1)
        images.append(Image.fromarray(canvas))
    path = Path(path)
    with io.atomic_path(path) as tmp:
        images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=max(1, round(1000 / fps)),
            loop=0,
        )
    return path


def rollout_section(
    gif: Path | None,
    summary: dict[str, str],
    heading: str = "Closed-loop rollouts",
    tiles: Sequence[tuple[str, bool]] = (),
) -> str:
    """HTML: the summary table (success rate with its interval, return, length, …), the GIF
    grid embedded as a data URI and, with ``tiles``, a list of each tile's instruction and
    outcome in grid order."""
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in summary.items()
    )
    parts = [f"<h2>{html.escape(heading)}</h2>", f"<table>{rows}</table>"]
    if gif is not None:
        data = base64.b64encode(Path(gif).read_bytes()).decode("ascii")
        caption = "recorded episodes (green frame: success, red: failure)"
        parts.append(
            f'<figure><img alt="{html.escape(caption)}" src="data:image/gif;base64,{data}">'
            f"<figcaption>{html.escape(caption)} (<code>{html.escape(Path(gif).name)}</code>)"
            "</figcaption></figure>"
        )
    if tiles:
        items = "".join(
            f"<li>{html.escape(text or '(no instruction)')} — {'success' if ok else 'failure'}</li>"
            for text, ok in tiles
        )
        parts.append(f"<ol start=0>{items}</ol>")
    return "\n".join(parts)

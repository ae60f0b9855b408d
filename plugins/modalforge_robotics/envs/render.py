"""Top-down numpy renderer of the tabletop: RGB and depth from a camera above the table's centre.

The image spans the table [-1, 1]²: column 0 is x = -1, row 0 is y = +1 (north up). Depth is the
camera height minus the height of the surface seen at a pixel (orthographic camera), so block and
effector pixels are nearer than table pixels. No anti-aliasing: a pixel belongs to a shape when its
centre does.
"""

from __future__ import annotations

import numpy as np

RGB: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 210, 40),
}
TABLE_RGB = (200, 180, 150)
GOAL_RGB = {
    "left": (185, 160, 205),
    "right": (160, 200, 205),
    "top": (205, 170, 160),
    "bottom": (170, 205, 160),
}
EFFECTOR_RGB = (120, 120, 120)

CAMERA_HEIGHT = 1.5  # metres above the table surface
BLOCK_HEIGHT = 0.08
EFFECTOR_HEIGHT = 0.15


class TopDownRenderer:
    """Draws goals, blocks and the effector disc into (H, W, 3) uint8 and (H, W) float32."""

    def __init__(self, size: int, goals: dict[str, tuple[float, float, float, float]]) -> None:
        self.size = size
        centres = -1.0 + (np.arange(size) + 0.5) * (2.0 / size)
        self.xs = centres.astype(np.float32)  # column → x
        self.ys = centres[::-1].astype(np.float32)  # row → y
        base = np.empty((size, size, 3), dtype=np.uint8)
        base[:] = TABLE_RGB
        for name, (x0, x1, y0, y1) in goals.items():
            rows = (self.ys >= y0) & (self.ys <= y1)
            cols = (self.xs >= x0) & (self.xs <= x1)
            base[np.ix_(rows, cols)] = GOAL_RGB[name]
        self.base = base

    def _box(self, cx: float, cy: float, half: float) -> tuple[slice, slice]:
        cols = np.nonzero(np.abs(self.xs - cx) <= half)[0]
        rows = np.nonzero(np.abs(self.ys - cy) <= half)[0]
        if len(cols) == 0 or len(rows) == 0:
            return slice(0, 0), slice(0, 0)
        return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)

    def draw(
        self,
        blocks: np.ndarray,
        colors: list[str],
        half: float,
        effector: np.ndarray,
        radius: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The RGB frame and the depth map of one state."""
        rgb = self.base.copy()
        depth = np.full((self.size, self.size), CAMERA_HEIGHT, dtype=np.float32)
        for (cx, cy), color in zip(blocks, colors, strict=True):
            rs, cs = self._box(float(cx), float(cy), half)
            rgb[rs, cs] = RGB[color]
            depth[rs, cs] = CAMERA_HEIGHT - BLOCK_HEIGHT
        rs, cs = self._box(float(effector[0]), float(effector[1]), radius)
        dx = self.xs[cs][None, :] - effector[0]
        dy = self.ys[rs][:, None] - effector[1]
        disc = dx * dx + dy * dy <= radius * radius
        rgb[rs, cs][disc] = EFFECTOR_RGB
        depth[rs, cs][disc] = CAMERA_HEIGHT - EFFECTOR_HEIGHT
        return rgb, depth

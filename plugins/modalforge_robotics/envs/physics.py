"""Kinematic pushing on the tabletop: a disc (the end effector) among axis-aligned squares.

No dynamics: after the effector moves, a block it overlaps is displaced along the line from the
effector's centre to the block's centre just far enough to clear it; a displaced block shoves the
blocks it then overlaps out along the axis of least penetration (a chain); blocks are clamped to
the table. If a few passes cannot resolve every contact (a block pinned against the table edge),
the whole step is undone: the effector stays where it was and nothing moves. So blocks never
overlap each other or the effector, and never leave the table.
"""

from __future__ import annotations

import math

import numpy as np

_EPS = 1e-6


def disc_square_distance(p: np.ndarray, centre: np.ndarray, half: float) -> float:
    """Distance from point ``p`` to the axis-aligned square (0 inside it)."""
    dx = max(abs(float(p[0] - centre[0])) - half, 0.0)
    dy = max(abs(float(p[1] - centre[1])) - half, 0.0)
    return math.hypot(dx, dy)


def squares_overlap(a: np.ndarray, b: np.ndarray, half: float, tol: float = 1e-6) -> bool:
    """Whether two axis-aligned squares of half-side ``half`` overlap (more than ``tol``)."""
    return bool(abs(a[0] - b[0]) < 2 * half - tol and abs(a[1] - b[1]) < 2 * half - tol)


def _clear_disc(p: np.ndarray, centre: np.ndarray, half: float, radius: float) -> np.ndarray:
    """The square's centre moved along (centre - p) just far enough to clear the disc."""
    direction = centre - p
    norm = float(np.hypot(direction[0], direction[1]))
    direction = np.array([1.0, 0.0]) if norm < _EPS else direction / norm
    lo, hi = 0.0, norm + half * math.sqrt(2.0) + radius + 1e-3
    for _ in range(30):  # bisection: distance grows monotonically along the push line
        mid = 0.5 * (lo + hi)
        if disc_square_distance(p, centre + mid * direction, half) < radius:
            lo = mid
        else:
            hi = mid
    return centre + (hi + 1e-5) * direction


def _separate(mover: np.ndarray, other: np.ndarray, half: float) -> np.ndarray:
    """``other`` shoved out of ``mover`` along the axis of least penetration."""
    d = other - mover
    pen = 2 * half - np.abs(d)
    axis = int(np.argmin(pen))
    sign = 1.0 if d[axis] >= 0 else -1.0
    out = other.copy()
    out[axis] += sign * (pen[axis] + 1e-5)
    return out


def resolve_step(
    ee: np.ndarray,
    target: np.ndarray,
    blocks: np.ndarray,
    *,
    half: float,
    radius: float,
    limit: float = 1.0,
    passes: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """Move the effector from ``ee`` to ``target`` and push blocks out of its way.

    Returns the new effector position and block centres ``(N, 2)``; both unchanged when the
    contacts cannot be resolved. ``limit`` is the half-width of the table.
    """
    new = blocks.copy()
    bound = limit - half
    moved = np.zeros(len(new), dtype=bool)
    for _ in range(passes):
        changed = False
        for i in range(len(new)):
            if disc_square_distance(target, new[i], half) < radius - 1e-7:
                new[i] = np.clip(_clear_disc(target, new[i], half, radius), -bound, bound)
                moved[i] = changed = True
        for i in range(len(new)):
            for j in range(len(new)):
                if i != j and moved[i] and squares_overlap(new[i], new[j], half):
                    new[j] = np.clip(_separate(new[i], new[j], half), -bound, bound)
                    moved[j] = changed = True
        if not changed:
            break
    if not valid(target, new, half=half, radius=radius):
        return ee.copy(), blocks.copy()
    return target.copy(), new


def valid(ee: np.ndarray, blocks: np.ndarray, *, half: float, radius: float) -> bool:
    """No block overlaps the effector disc or another block."""
    for i in range(len(blocks)):
        if disc_square_distance(ee, blocks[i], half) < radius - 1e-4:
            return False
        for j in range(i + 1, len(blocks)):
            if squares_overlap(blocks[i], blocks[j], half, tol=1e-4):
                return False
    return True

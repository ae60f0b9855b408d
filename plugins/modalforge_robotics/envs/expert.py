"""Scripted expert of the tabletop, with privileged state (block positions from the env).

Reach: a P-controller towards the target block's centre. Push: the push line runs from the
block's centre to a point inside the goal; the expert goes to a pre-push point behind the block
on that line (around the block, not through it, if it starts in front or beside), then moves
along the line, correcting its lateral offset, which drives the block towards the goal (the env
pushes a block along the line from the effector's centre to the block's centre). Optional
Gaussian action noise gives demonstrations some diversity.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from modalforge_robotics.envs.physics import disc_square_distance
from modalforge_robotics.envs.tabletop import (
    BLOCK_HALF,
    EFFECTOR_RADIUS,
    GOAL_REGIONS,
    MAX_SPEED,
)

_GAIN = 1.5  # P gain, in units of the maximum speed per table unit of error
_CONTACT = BLOCK_HALF + EFFECTOR_RADIUS  # face-on contact distance
_CLEAR = BLOCK_HALF * math.sqrt(2.0) + EFFECTOR_RADIUS + 0.05  # clears the block at any angle


def _toward(delta: np.ndarray, gain: float = _GAIN) -> np.ndarray:
    """A velocity command proportional to ``delta`` (in table units), at most unit norm."""
    v = delta * (gain / MAX_SPEED)
    n = float(np.hypot(v[0], v[1]))
    return v / n if n > 1.0 else v


GOAL_DIRECTIONS = {
    "left": np.array([-1.0, 0.0]),
    "right": np.array([1.0, 0.0]),
    "top": np.array([0.0, 1.0]),
    "bottom": np.array([0.0, -1.0]),
}


def push_goal_point(block: np.ndarray, goal: str) -> np.ndarray:
    """Where the expert drives the block: 45% of the way into the goal region from its inner
    edge, across the region at the block's own offset (clipped 0.15 inside its sides)."""
    x0, x1, y0, y1 = GOAL_REGIONS[goal]
    if goal in ("left", "right"):
        x = x0 + 0.45 * (x1 - x0) if goal == "left" else x1 - 0.45 * (x1 - x0)
        return np.array([x, float(np.clip(block[1], y0 + 0.15, y1 - 0.15))])
    y = y0 + 0.45 * (y1 - y0) if goal == "bottom" else y1 - 0.45 * (y1 - y0)
    return np.array([float(np.clip(block[0], x0 + 0.15, x1 - 0.15)), y])


class TabletopExpert:
    """``expert(obs) -> action`` for a :class:`TabletopEnv` (or a wrapper of one)."""

    def __init__(self, env: Any, noise: float = 0.0, seed: int | None = None) -> None:
        self.env = env.unwrapped
        self.noise = float(noise)
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        """Re-seed the action noise (``collect_episodes`` calls this for each episode)."""
        self.rng = np.random.default_rng(seed)

    def __call__(self, obs: Any = None) -> np.ndarray:
        return self.act(obs)

    def act(self, obs: Any = None) -> np.ndarray:
        """The next action; ``obs`` is unused (the expert reads the env's state)."""
        env = self.env
        ee, block = env.ee, env.blocks[env.target]
        if env.task == "reach":
            action = _toward(block - ee)
        else:
            action = self._push(ee, block, env.combination.goal)
        if self.noise > 0:
            action = action + self.rng.normal(0.0, self.noise, 2)
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def _push(self, ee: np.ndarray, block: np.ndarray, goal: str) -> np.ndarray:
        line = push_goal_point(block, goal) - block
        dist = float(np.hypot(*line))
        d = line / dist if dist > 1e-9 else GOAL_DIRECTIONS[goal]
        perp = np.array([-d[1], d[0]])
        rel = ee - block
        along, lateral = float(rel @ d), float(rel @ perp)
        if along < -(_CONTACT - 0.02) and abs(lateral) < 0.04:
            # aligned behind the block: push through it, steering back onto the line
            return _toward(d * 0.2 - perp * lateral * 2.0, gain=1.0)
        prepush = block - d * (_CLEAR - 0.03)
        if _path_clear(ee, prepush, block):
            return _toward(prepush - ee)
        side = 1.0 if lateral >= 0 else -1.0
        corner = block + perp * side * _CLEAR - d * _CLEAR
        if _path_clear(ee, corner, block):
            return _toward(corner - ee)
        # in front of the block: step sideways first, keeping the distance along the line
        return _toward(block + perp * side * _CLEAR + d * max(along, 0.0) - ee)


def _path_clear(start: np.ndarray, end: np.ndarray, block: np.ndarray) -> bool:
    """Whether the effector can move straight from ``start`` to ``end`` without touching the
    block (a path that starts in contact may move away from it)."""
    floor = min(EFFECTOR_RADIUS + 0.005, disc_square_distance(start, block, BLOCK_HALF))
    for s in np.linspace(0.1, 1.0, 10):
        if disc_square_distance(start + (end - start) * s, block, BLOCK_HALF) < floor:
            return False
    return True

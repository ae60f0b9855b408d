"""The built-in procedural tabletop: coloured blocks, four goal regions, a disc end effector.

Tasks: ``reach`` ("reach the red block": success when the effector's centre is within
``REACH_RADIUS`` of the block's centre, which it gets to before touching the block) and ``push``
("push the red block to the left goal": success when the block's centre is inside the goal
region; goals at the left, right, top and bottom edges). Reward is sparse: 1.0 on the step
that succeeds, which also terminates the episode, 0.0 otherwise; ``max_steps`` truncates. The
observation has the top-down RGB-D image, the effector's state (x, y and its last displacement
in units of the maximum speed, so in [-1, 1]) and the instruction; block positions are only in
the image. Everything is drawn from the seed of ``reset``.
"""

from __future__ import annotations

import string
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from modalforge.errors import SpecError
from modalforge_robotics.envs import combinations as combos
from modalforge_robotics.envs.physics import disc_square_distance, resolve_step
from modalforge_robotics.envs.render import CAMERA_HEIGHT, TopDownRenderer

BLOCK_HALF = 0.08  # blocks are squares of side 0.16
EFFECTOR_RADIUS = 0.06
MAX_SPEED = 0.06  # table units per step at |action| = 1
REACH_RADIUS = 0.2  # > the contact distance (0.14 face-on, 0.173 at a corner)
# (x0, x1, y0, y1) of the goal regions at the table's four edges (top: y = +1, the image's
# first row). Push blocks start in the square between them, outside every goal.
GOAL_REGIONS: dict[str, tuple[float, float, float, float]] = {
    "left": (-1.0, -0.6, -0.4, 0.4),
    "right": (0.6, 1.0, -0.4, 0.4),
    "top": (-0.4, 0.4, 0.6, 1.0),
    "bottom": (-0.4, 0.4, -1.0, -0.6),
}
BLOCK_SPAN = {"reach": (0.4, 0.6), "push": (0.4, 0.4)}  # |x|, |y| bounds of block centres
DEFAULT_MAX_STEPS = {"reach": 60, "push": 120}
INSTRUCTION_MAX_LENGTH = 64
_CHARSET = string.ascii_lowercase + " "


def in_goal(point: np.ndarray, goal: str) -> bool:
    """Whether ``point`` lies inside the goal region ``goal``."""
    x0, x1, y0, y1 = GOAL_REGIONS[goal]
    return bool(x0 <= point[0] <= x1 and y0 <= point[1] <= y1)


class TabletopEnv(gym.Env):
    """Language-conditioned reach / push on a numpy-rendered tabletop (see the module doc)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        task: str = "reach",
        image_size: int = 64,
        num_objects: int = 3,
        max_steps: int | None = None,
        combinations: str = "all",
        render_mode: str | None = None,
    ) -> None:
        if task not in combos.TASKS:
            raise SpecError("env.task", f"unknown task {task!r}; use one of {combos.TASKS}")
        if combinations not in combos.SPLITS:
            raise SpecError(
                "env.combinations", f"unknown split {combinations!r}; use one of {combos.SPLITS}"
            )
        if not 1 <= num_objects <= len(combos.COLORS):
            raise SpecError(
                "env.num_objects",
                f"must be in 1..{len(combos.COLORS)} (one block per colour), got {num_objects}",
            )
        if image_size < 16:
            raise SpecError("env.image_size", f"must be >= 16, got {image_size}")
        if render_mode not in (None, "rgb_array"):
            raise SpecError("env.render_mode", f"{render_mode!r} is not 'rgb_array' or None")
        self.task = task
        self.image_size = image_size
        self.num_objects = num_objects
        self.max_steps = int(max_steps) if max_steps is not None else DEFAULT_MAX_STEPS[task]
        self.combinations = combinations
        self.render_mode = render_mode
        self.allowed = combos.combination_split(task, combinations)
        self.observation_space = spaces.Dict(
            {
                "rgb": spaces.Box(0, 255, (image_size, image_size, 3), dtype=np.uint8),
                "depth": spaces.Box(0.0, CAMERA_HEIGHT, (image_size, image_size), np.float32),
                "state": spaces.Box(-1.0, 1.0, (4,), dtype=np.float32),
                "instruction": spaces.Text(INSTRUCTION_MAX_LENGTH, min_length=1, charset=_CHARSET),
            }
        )
        self.action_space = spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
        self._renderer = TopDownRenderer(image_size, GOAL_REGIONS)
        self.ee = np.zeros(2)
        self.velocity = np.zeros(2)
        self.blocks = np.zeros((0, 2))
        self.colors: list[str] = []
        self.target = 0
        self.combination: combos.Combination | None = None
        self.instruction = ""
        self.steps = 0
        self._frame: np.ndarray | None = None
        self._depth: np.ndarray | None = None

    # ---------------------------------------------------------------- episode
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        rng = self.np_random
        combo = self._pick_combination(rng, options or {})
        if combo.template is not None:
            template = combo.template
        elif "template" in (options or {}):
            template = int(options["template"]) % len(combos.PUSH_TEMPLATES)  # type: ignore[index]
        else:
            template = int(rng.integers(len(combos.PUSH_TEMPLATES)))
        others = [c for c in combos.COLORS if c != combo.color]
        rng.shuffle(others)
        colors = [combo.color, *others[: self.num_objects - 1]]
        order = rng.permutation(len(colors))
        self.colors = [colors[i] for i in order]
        self.target = int(np.argmax(order == 0))
        self.blocks = self._place_blocks(rng)
        self.ee = self._place_effector(rng)
        self.velocity = np.zeros(2)
        self.combination = combo
        self.template = template
        self.instruction = combos.instruction(self.task, combo.color, combo.goal, template)
        self.steps = 0
        self._draw()
        return self._observation(), self._info(False)

    def step(self, action: np.ndarray) -> tuple[dict[str, Any], float, bool, bool, dict]:
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
        lim = 1.0 - EFFECTOR_RADIUS
        want = np.clip(self.ee + a * MAX_SPEED, -lim, lim)
        new_ee, self.blocks = resolve_step(
            self.ee, want, self.blocks, half=BLOCK_HALF, radius=EFFECTOR_RADIUS
        )
        self.velocity = (new_ee - self.ee) / MAX_SPEED
        self.ee = new_ee
        self.steps += 1
        success = self._success()
        self._draw()
        truncated = not success and self.steps >= self.max_steps
        return self._observation(), float(success), success, truncated, self._info(success)

    def render(self) -> np.ndarray | None:
        """The current RGB frame (H, W, 3) uint8, at the observation's resolution."""
        if self.render_mode is None or self._frame is None:
            return None
        return self._frame.copy()

    # ---------------------------------------------------------------- helpers
    def _pick_combination(
        self, rng: np.random.Generator, options: dict[str, Any]
    ) -> combos.Combination:
        keys = ("color", "template") if self.task == "reach" else ("color", "goal")
        pinned = {k: options[k] for k in keys if k in options}
        pool = [c for c in self.allowed if all(getattr(c, k) == v for k, v in pinned.items())]
        if not pool:
            raise SpecError(
                "reset.options",
                f"tabletop reset options {pinned} match no {self.task} combination of the "
                f"{self.combinations!r} split; use combinations='all' or another colour/goal",
            )
        return pool[int(rng.integers(len(pool)))]

    def _place_blocks(self, rng: np.random.Generator) -> np.ndarray:
        gap = 2 * BLOCK_HALF + 0.12  # free space between blocks, so the expert fits between
        for _ in range(1000):
            sx, sy = BLOCK_SPAN[self.task]
            pts = np.column_stack(
                [rng.uniform(-sx, sx, self.num_objects), rng.uniform(-sy, sy, self.num_objects)]
            )
            d = np.abs(pts[:, None, :] - pts[None, :, :]).max(-1)
            np.fill_diagonal(d, np.inf)
            if d.min() >= gap:
                return pts
        raise RuntimeError("could not place the blocks")  # pragma: no cover - 4 blocks always fit

    def _place_effector(self, rng: np.random.Generator) -> np.ndarray:
        for _ in range(1000):
            p = rng.uniform(-0.85, 0.85, 2)
            dist = min(disc_square_distance(p, b, BLOCK_HALF) for b in self.blocks)
            if dist >= EFFECTOR_RADIUS + 0.1:
                return p
        raise RuntimeError("could not place the effector")  # pragma: no cover

    def _success(self) -> bool:
        block = self.blocks[self.target]
        if self.task == "reach":
            return bool(np.hypot(*(self.ee - block)) <= REACH_RADIUS)
        assert self.combination is not None and self.combination.goal is not None
        return in_goal(block, self.combination.goal)

    def _draw(self) -> None:
        self._frame, self._depth = self._renderer.draw(
            self.blocks, self.colors, BLOCK_HALF, self.ee, EFFECTOR_RADIUS
        )

    def _observation(self) -> dict[str, Any]:
        assert self._frame is not None and self._depth is not None
        state = np.concatenate([self.ee, self.velocity]).astype(np.float32)
        return {
            "rgb": self._frame.copy(),
            "depth": self._depth.copy(),
            "state": np.clip(state, -1.0, 1.0),
            "instruction": self.instruction,
        }

    def _info(self, success: bool) -> dict[str, Any]:
        assert self.combination is not None
        return {
            "is_success": success,
            "task": self.task,
            "color": self.combination.color,
            "goal": self.combination.goal,
            "template": self.template,
            "heldout": self.combination in combos.HELDOUT,
            "instruction": self.instruction,
        }

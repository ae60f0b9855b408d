"""LeRobot's ``gym-pusht`` (``gym_pusht/PushT-v0``) behind the observation layout of every
modalforge environment, with LeRobot's own metrics.

The wrapper maps ``pixels`` → ``rgb`` and ``agent_pos`` → ``state`` (float32) and adds a
constant ``instruction``; ``info["is_success"]`` and ``info["coverage"]`` (the T's overlap with
the goal region) are the environment's. LeRobot reports the success rate and the average over
episodes of the maximum reward (the reward is the overlap, scaled so that the success overlap
is 1): the rollout loop records both.
"""

from __future__ import annotations

import string
from typing import Any

import gymnasium as gym
import numpy as np

INSTRUCTION = "push the t block onto the target"
INSTRUCTION_CHARSET = string.ascii_letters + " "


def make_pusht(env_id: str = "gym_pusht/PushT-v0", *, image_size: int = 96, **params: Any):  # noqa: ANN201
    """``gym_pusht/PushT-v0`` observed as pixels plus the agent's position (LeRobot's
    ``pixels_agent_pos``), rendered at ``image_size`` for observations and recordings."""
    import gym_pusht  # noqa: F401 - registers gym_pusht/*

    params.setdefault("obs_type", "pixels_agent_pos")
    if params["obs_type"] != "pixels_agent_pos":
        from modalforge.errors import SpecError

        raise SpecError(
            "--env-param obs_type",
            f"the pixels + proprioception adapter reads obs_type pixels_agent_pos, not "
            f"{params['obs_type']!r}",
            hint="leave obs_type unset",
        )
    env = gym.make(
        env_id,
        render_mode="rgb_array",
        observation_width=image_size,
        observation_height=image_size,
        visualization_width=image_size,
        visualization_height=image_size,
        **params,
    )
    return PixelsAgentPos(env)


class PixelsAgentPos(gym.ObservationWrapper):
    """``{"pixels", "agent_pos"}`` → ``{"rgb", "state", "instruction"}``."""

    def __init__(self, env: Any) -> None:  # noqa: ANN401
        super().__init__(env)
        pixels = env.observation_space["pixels"]
        self.observation_space = gym.spaces.Dict(
            {
                "rgb": gym.spaces.Box(0, 255, pixels.shape, np.uint8),
                "state": gym.spaces.Box(-np.inf, np.inf, (2,), np.float32),
                "instruction": gym.spaces.Text(64, charset=INSTRUCTION_CHARSET),
            }
        )

    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        return {
            "rgb": np.asarray(observation["pixels"], dtype=np.uint8),
            "state": np.asarray(observation["agent_pos"], dtype=np.float32),
            "instruction": INSTRUCTION,
        }

"""Runs a policy in an environment for seeded episodes and returns them as Episode dicts.

An Episode (the contract the HDF5 / LeRobot writers take): ``obs`` {key: (T, ...)} with the
env's array keys (``rgb``, ``depth``, ``state``; the instruction is constant and kept in
``instruction``), ``actions`` float32 (T, A), ``rewards`` float32 (T,), ``success`` bool,
``instruction`` str and ``meta`` (task, object, goal, seed, ...: JSON values). ``obs[t]`` is what
the policy saw when it chose ``actions[t]``; the observation after the last action is not kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Policy = Callable[[dict[str, Any]], np.ndarray]


def collect_episodes(
    env: Any, policy: Policy, episodes: int, seed: int = 0, *, options: dict | None = None
) -> list[dict[str, Any]]:
    """``episodes`` episodes with reset seeds ``seed, seed + 1, ...``.

    An episode's ``success`` follows the environment's rule (``success_at``, see
    :func:`~modalforge_robotics.rollout.run_episodes`). ``policy`` is called with each
    observation; if it has a ``reset(seed=...)`` method (as
    :class:`~modalforge_robotics.envs.expert.TabletopExpert` does) it is called with the
    episode's seed first, so its noise is reproducible too.
    """
    from modalforge_robotics.rollout.loop import success_rule

    final = success_rule(env) == "final"  # e.g. Reacher: at the target when time runs out
    out: list[dict[str, Any]] = []
    for i in range(episodes):
        ep_seed = int(seed) + i
        obs, info = env.reset(seed=ep_seed, options=options)
        if hasattr(policy, "reset"):
            policy.reset(seed=ep_seed)
        frames: dict[str, list[np.ndarray]] = {}
        actions: list[np.ndarray] = []
        rewards: list[float] = []
        success, done = False, False
        while not done:
            for key, value in obs.items():
                if isinstance(value, np.ndarray):
                    frames.setdefault(key, []).append(value)
            action = np.asarray(policy(obs), dtype=np.float32).reshape(env.action_space.shape)
            obs, reward, terminated, truncated, info = env.step(action)
            actions.append(action)
            rewards.append(float(reward))
            now = bool(info.get("is_success", False))
            success = now if final else (success or now)
            done = terminated or truncated
        out.append(
            {
                "obs": {k: np.stack(v) for k, v in frames.items()},
                "actions": np.stack(actions).astype(np.float32),
                "rewards": np.asarray(rewards, dtype=np.float32),
                "success": success,
                "instruction": str(obs.get("instruction", info.get("instruction", ""))),
                "meta": {
                    "task": info.get("task"),
                    "object": info.get("color"),
                    "goal": info.get("goal"),
                    "seed": ep_seed,
                    "template": info.get("template"),
                    "heldout": info.get("heldout"),
                    "length": len(actions),
                },
            }
        )
    return out

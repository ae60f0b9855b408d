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
    env: Any,
    policy: Policy,
    episodes: int,
    seed: int = 0,
    *,
    options: dict | None = None,
    execution_noise: float = 0.0,
) -> list[dict[str, Any]]:
    """``episodes`` episodes with reset seeds ``seed, seed + 1, ...``.

    ``execution_noise`` is DART's data collection (Laskey et al. 2017): the environment executes
    the policy's action plus Gaussian noise of that standard deviation (clipped to the action
    space), while the episode records the policy's own, noise-free action — demonstrations that
    visit the states a learnt policy drifts into, labelled with how the expert recovers. The
    noise is drawn from the episode's seed.

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
        noise_rng = np.random.default_rng([ep_seed, 1])
        frames: dict[str, list[np.ndarray]] = {}
        actions: list[np.ndarray] = []
        rewards: list[float] = []
        success, done = False, False
        while not done:
            for key, value in obs.items():
                if isinstance(value, np.ndarray):
                    frames.setdefault(key, []).append(value)
            action = np.asarray(policy(obs), dtype=np.float32).reshape(env.action_space.shape)
            executed = action
            if execution_noise > 0:
                space = env.action_space
                noisy = action + noise_rng.normal(0.0, execution_noise, action.shape)
                executed = np.clip(noisy, space.low, space.high).astype(np.float32)
            obs, reward, terminated, truncated, info = env.step(executed)
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

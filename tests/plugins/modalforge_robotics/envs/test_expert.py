"""The scripted expert succeeds on both tasks and both combination splits, noisy or not."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("gymnasium")

from modalforge_robotics.envs.expert import (
    GOAL_DIRECTIONS,  # noqa: E402
    TabletopExpert,  # noqa: E402
)
from modalforge_robotics.envs.tabletop import TabletopEnv, in_goal  # noqa: E402


def _success_rate(env: TabletopEnv, expert: TabletopExpert, seeds: range) -> float:
    wins = 0
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        expert.reset(seed=seed)
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(expert(obs))
            done = terminated or truncated
        wins += info["is_success"]
    return wins / len(seeds)


@pytest.mark.parametrize(("task", "floor"), [("reach", 0.95), ("push", 0.9)])
@pytest.mark.parametrize("split", ["train", "heldout"])
@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_expert_success_rate(task, floor, split, noise):
    env = TabletopEnv(task=task, combinations=split, num_objects=3)
    assert _success_rate(env, TabletopExpert(env, noise=noise), range(100, 120)) >= floor


def test_expert_push_puts_the_named_block_in_the_named_goal():
    env = TabletopEnv(task="push", num_objects=4)
    expert = TabletopExpert(env)
    goals = ["left", "right", "top", "bottom"] * 2
    for seed, goal in enumerate(goals):
        obs, info = env.reset(seed=seed, options={"goal": goal})
        start = env.blocks.copy()
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(expert(obs))
            done = terminated or truncated
        assert info["is_success"] and in_goal(env.blocks[env.target], goal)
        others = [i for i in range(len(env.blocks)) if i != env.target]
        # the target block moved towards its goal; the success is not a distractor's
        moved = env.blocks[env.target] - start[env.target]
        assert moved @ GOAL_DIRECTIONS[goal] > 0.2
        assert env.colors[env.target] == info["color"] and others


def test_expert_noise_is_reproducible_and_changes_actions():
    env = TabletopEnv(task="reach")
    obs, _ = env.reset(seed=0)
    a, b = TabletopExpert(env, noise=0.2, seed=5), TabletopExpert(env, noise=0.2, seed=5)
    clean = TabletopExpert(env).act(obs)
    noisy = [a.act(obs) for _ in range(3)]
    np.testing.assert_array_equal(noisy, [b.act(obs) for _ in range(3)])
    assert not np.allclose(noisy[0], clean) and np.all(np.abs(noisy) <= 1.0)
    assert clean.dtype == np.float32 and clean.shape == (2,)

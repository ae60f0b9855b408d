"""collect_episodes returns Episode dicts of the shared contract, reproducibly."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("gymnasium")

from modalforge_robotics.envs.collect import collect_episodes  # noqa: E402
from modalforge_robotics.envs.expert import TabletopExpert  # noqa: E402
from modalforge_robotics.envs.tabletop import TabletopEnv  # noqa: E402


def test_episode_shapes_and_contents():
    env = TabletopEnv(task="push", image_size=32)
    episodes = collect_episodes(env, TabletopExpert(env, noise=0.1), 3, seed=10)
    assert len(episodes) == 3
    for i, ep in enumerate(episodes):
        t = len(ep["actions"])
        assert set(ep) == {"obs", "actions", "rewards", "success", "instruction", "meta"}
        assert set(ep["obs"]) == {"rgb", "depth", "state"}
        assert ep["obs"]["rgb"].shape == (t, 32, 32, 3) and ep["obs"]["rgb"].dtype == np.uint8
        assert ep["obs"]["depth"].shape == (t, 32, 32) and ep["obs"]["depth"].dtype == np.float32
        assert ep["obs"]["state"].shape == (t, 4) and ep["obs"]["state"].dtype == np.float32
        assert ep["actions"].shape == (t, 2) and ep["actions"].dtype == np.float32
        assert ep["rewards"].shape == (t,) and ep["rewards"].dtype == np.float32
        assert ep["success"] is True and ep["rewards"][-1] == 1.0 and ep["rewards"][:-1].sum() == 0
        assert ep["meta"]["seed"] == 10 + i and ep["meta"]["length"] == t
        assert ep["meta"]["task"] == "push" and ep["meta"]["object"] in ep["instruction"]
        assert f"{ep['meta']['goal']} goal" in ep["instruction"]
        json.dumps(ep["meta"])  # JSON values only
        # obs[t] is what the policy saw before actions[t]: the first one is the reset's
        first, _ = env.reset(seed=10 + i)
        np.testing.assert_array_equal(ep["obs"]["rgb"][0], first["rgb"])


def test_collection_is_reproducible_and_works_with_a_plain_callable():
    env = TabletopEnv(task="reach")
    a = collect_episodes(env, TabletopExpert(env, noise=0.3), 2, seed=0)
    b = collect_episodes(env, TabletopExpert(env, noise=0.3), 2, seed=0)
    for ea, eb in zip(a, b, strict=True):
        np.testing.assert_array_equal(ea["actions"], eb["actions"])
        np.testing.assert_array_equal(ea["obs"]["depth"], eb["obs"]["depth"])
    zero = collect_episodes(env, lambda obs: np.zeros(2), 1, seed=0)[0]
    assert len(zero["actions"]) == env.max_steps and not zero["success"]
    assert np.all(zero["obs"]["state"][:, 2:] == 0.0)


def test_execution_noise_records_the_experts_clean_actions_dart():
    env = TabletopEnv(task="push")
    expert = TabletopExpert(env)  # noise-free: the labels
    (ep,) = collect_episodes(env, expert, 1, seed=3, execution_noise=0.4)
    # replay: at each step the label is the clean expert's action in the state reached by
    # executing label + the episode's noise
    replay = TabletopEnv(task="push")
    obs, _ = replay.reset(seed=3)
    rng = np.random.default_rng([3, 1])
    deviated = 0.0
    for t, label in enumerate(ep["actions"]):
        np.testing.assert_array_equal(obs["rgb"], ep["obs"]["rgb"][t])  # the recorded state
        np.testing.assert_allclose(label, TabletopExpert(replay).act(obs), atol=1e-6)
        executed = np.clip(label + rng.normal(0.0, 0.4, 2), -1.0, 1.0).astype(np.float32)
        deviated = max(deviated, float(np.abs(executed - label).max()))
        obs, *_ = replay.step(executed)
    assert deviated > 0.2  # the environment did run noisy actions

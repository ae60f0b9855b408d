"""LeRobot's real gym-pusht behind the pixels + proprioception adapter, and the rollout loop's
LeRobot metrics there (success, max reward, max coverage)."""

from __future__ import annotations

import numpy as np
import pytest

from modalforge.errors import SpecError
from modalforge_robotics.gymenv import make_env
from modalforge_robotics.rollout import run_episodes

pytest.importorskip("gym_pusht", reason="gym-pusht (the robotics extra) provides PushT")


def test_adapter_maps_pixels_and_agent_position():
    env = make_env("gym_pusht/PushT-v0", image_size=64)
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    assert obs["rgb"].shape == (64, 64, 3) and obs["state"].dtype == np.float32
    raw = env.unwrapped
    np.testing.assert_allclose(obs["state"], raw.agent.position, rtol=1e-6)
    np.testing.assert_array_equal(obs["rgb"], env.render())  # what a recording shows
    assert "is_success" in info
    env.close()
    with pytest.raises(SpecError, match="obs_type"):
        make_env("gym_pusht/PushT-v0", obs_type="state")


class Recorder:
    """Random actions, keeping every step's reward and coverage to check the loop's maxima."""

    def __init__(self, envs: list) -> None:
        self.envs, self.rng = envs, np.random.default_rng(0)

    def reset(self, slot: int) -> None: ...

    def act(self, observations, slots) -> np.ndarray:  # noqa: ANN001
        return self.rng.uniform(0, 512, (len(slots), 2))


def test_random_policy_reports_lerobots_metrics():
    seen: dict[int, list[tuple[float, float]]] = {}

    def make():  # noqa: ANN202
        env = make_env("gym_pusht/PushT-v0", image_size=32)
        step = env.step

        def recording_step(action):  # noqa: ANN001, ANN202
            out = step(action)
            seen.setdefault(id(env), []).append((out[1], out[4]["coverage"]))
            return out

        env.step = recording_step
        return env

    results = run_episodes(make, Recorder([]), 2, seed=7, max_steps=25)
    steps = next(iter(seen.values()))
    first = steps[:25]
    assert results[0].max_reward == pytest.approx(max(r for r, _ in first))
    assert results[0].max_coverage == pytest.approx(max(c for _, c in first))
    assert not any(r.success for r in results) and all(r.length == 25 for r in results)
    assert 0.0 <= results[1].max_coverage <= 1.0

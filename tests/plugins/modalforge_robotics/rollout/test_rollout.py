"""The rollout loop on a tiny gymnasium environment, and success-rate intervals against scipy."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from scipy.stats import beta, binomtest

from modalforge_robotics.rollout import run_episodes, success_rate


class LineWorld(gym.Env):
    """Move a point on a line to a goal drawn from the seed; success within 0.1 of it."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, render_mode: str | None = None) -> None:
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Dict(
            {"state": gym.spaces.Box(-2, 2, (2,), np.float32), "instruction": gym.spaces.Text(20)}
        )
        self.action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    def reset(self, *, seed=None, options=None):  # noqa: ANN001, ANN201
        super().reset(seed=seed)
        self.x, self.goal, self.t = 0.0, float(self.np_random.uniform(-1, 1)), 0
        return self._obs(), {"is_success": False}

    def _obs(self) -> dict:
        return {"state": np.array([self.x, self.goal], np.float32), "instruction": "go"}

    def step(self, action):  # noqa: ANN001, ANN201
        self.x += 0.2 * float(np.clip(action[0], -1, 1))
        self.t += 1
        done = abs(self.x - self.goal) < 0.1
        return self._obs(), float(done), done, self.t >= 20, {"is_success": done}

    def render(self) -> np.ndarray:
        return np.full((4, 4, 3), int(127 * (self.x + 1)), np.uint8)


class Controller:
    """Proportional control towards the goal (or random), recording how it is called."""

    def __init__(self, random: bool = False) -> None:
        self.random, self.resets, self.batches = random, [], []
        self.rng = np.random.default_rng(0)

    def reset(self, slot: int) -> None:
        self.resets.append(slot)

    def act(self, observations, slots) -> np.ndarray:  # noqa: ANN001
        self.batches.append(len(slots))
        if self.random:
            return self.rng.uniform(-1, 1, (len(slots), 1))
        s = np.stack([o["state"] for o in observations])
        return np.clip(5 * (s[:, 1:] - s[:, :1]), -1, 1)


def test_episodes_are_seeded_and_do_not_depend_on_the_number_of_envs():
    one = run_episodes(LineWorld, Controller(), 7, num_envs=1, seed=10)
    policy = Controller()
    three = run_episodes(LineWorld, policy, 7, num_envs=3, seed=10)
    assert [r.index for r in three] == list(range(7))
    assert [r.seed for r in three] == [10 + i for i in range(7)]
    assert [(r.success, r.length, r.ret) for r in one] == [
        (r.success, r.length, r.ret) for r in three
    ]
    assert all(r.success and r.ret == 1.0 for r in three)  # the controller always arrives
    assert len(policy.resets) == 7 and max(policy.batches) == 3  # one batched call per step
    goals = [LineWorld().reset(seed=10 + i)[0]["state"][1] for i in range(7)]
    lengths = [int(np.ceil((abs(g) - 0.1) / 0.2 + 1e-9)) for g in goals]  # full-speed steps
    assert [r.length for r in three] == lengths


def test_random_policy_truncates_and_recording_keeps_frames():
    results = run_episodes(lambda: LineWorld("rgb_array"), Controller(random=True), 5, record=2)
    assert any(not r.success for r in results)
    assert all(r.length == 20 for r in results if not r.success)  # truncated at 20 steps
    assert [len(r.frames) for r in results] == [
        results[0].length + 1,
        results[1].length + 1,
        0,
        0,
        0,
    ]
    assert results[0].frames[0].shape == (4, 4, 3) and results[0].instruction == "go"
    capped = run_episodes(LineWorld, Controller(random=True), 2, max_steps=3)
    assert all(r.length <= 3 for r in capped)


@pytest.mark.parametrize(("k", "n"), [(8, 10), (0, 20), (20, 20), (37, 50)])
def test_success_intervals_against_scipy(k, n):
    wilson = success_rate(k, n)
    ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson.rate == k / n
    assert wilson.low == pytest.approx(ref.low, abs=1e-12)
    assert wilson.high == pytest.approx(ref.high, abs=1e-12)
    post = success_rate(k, n, method="beta")
    assert post.low == pytest.approx(beta.ppf(0.025, k + 1, n - k + 1))
    assert post.high == pytest.approx(beta.ppf(0.975, k + 1, n - k + 1))
    assert 0 <= post.low < post.high <= 1


def test_success_rate_rejects_bad_counts():
    with pytest.raises(ValueError, match="at least one episode"):
        success_rate(0, 0)
    with pytest.raises(ValueError, match=r"successes must be in \[0, 3\]"):
        success_rate(4, 3)
    with pytest.raises(ValueError, match="wilson or beta"):
        success_rate(1, 3, method="normal")


class PassThrough(LineWorld):
    """Never terminates: a controller passes the goal and overshoots it (success only while
    it is within 0.1), like Reacher's fingertip sweeping through the target."""

    def step(self, action):  # noqa: ANN001, ANN201
        obs, _, _, truncated, info = super().step(action)
        return obs, 0.0, False, truncated, info


class Overshoot(Controller):
    def act(self, observations, slots) -> np.ndarray:  # noqa: ANN001
        s = np.stack([o["state"] for o in observations])
        return np.sign(s[:, 1:] - 0.0) * 0.5  # keeps going in the goal's direction


def test_success_any_step_or_final_step_and_the_env_default():
    from modalforge_robotics.rollout import success_rule

    def make() -> gym.Env:
        return PassThrough()

    anywhere = run_episodes(make, Overshoot(), 6, success_at="any")
    final = run_episodes(make, Overshoot(), 6, success_at="final")
    # the point passes through every goal in (-1, 1) at speed 0.1 per step, then leaves it
    assert all(r.success for r in anywhere) and not any(r.success for r in final)
    assert [r.length for r in final] == [20] * 6
    # a stopping controller stays at the goal: success under both rules
    assert all(r.success for r in run_episodes(make, Controller(), 6, success_at="final"))

    class FinalRule(gym.Wrapper):
        success_at = "final"

    wrapped = gym.wrappers.RecordEpisodeStatistics(FinalRule(PassThrough()))
    assert success_rule(wrapped) == "final" and success_rule(PassThrough()) == "any"
    by_env = run_episodes(lambda: FinalRule(PassThrough()), Overshoot(), 3)
    assert not any(r.success for r in by_env)  # the environment's own rule applies
    with pytest.raises(ValueError, match="success_at"):
        run_episodes(make, Controller(), 1, success_at="sometimes")

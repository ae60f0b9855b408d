"""gymnasium's MuJoCo Reacher-v5 (real, rendered headless with EGL) behind the pixels +
proprioception wrapper, and its scripted expert."""

from __future__ import annotations

import numpy as np
import pytest

from modalforge_robotics.gymenv import ReacherExpert, joint_targets, make_reacher
from modalforge_robotics.gymenv.reacher import LINK_LENGTHS
from modalforge_robotics.rollout import run_episodes, success_rule

pytest.importorskip("mujoco", reason="MuJoCo (the robotics extra) renders Reacher-v5")


def _fingertip(angles: np.ndarray) -> np.ndarray:
    l1, l2 = LINK_LENGTHS
    t1, t2 = angles
    return np.array(
        [l1 * np.cos(t1) + l2 * np.cos(t1 + t2), l1 * np.sin(t1) + l2 * np.sin(t1 + t2)]
    )


@pytest.mark.parametrize("point", [(0.1, 0.05), (-0.15, -0.1), (0.0, 0.2), (0.2, 0.0)])
def test_inverse_kinematics_reaches_the_point(point):
    for current in (np.zeros(2), np.array([2.0, -1.5])):
        np.testing.assert_allclose(_fingertip(joint_targets(*point, current)), point, atol=1e-9)


def test_wrapper_gives_pixels_proprioception_and_success():
    env = make_reacher(image_size=32)
    obs, info = env.reset(seed=1)
    assert obs["rgb"].shape == (32, 32, 3) and obs["rgb"].dtype == np.uint8
    assert obs["state"].shape == (6,) and obs["instruction"] == "reach the red target"
    assert env.observation_space.contains(obs)
    u = env.unwrapped
    angles = u.data.qpos[:2]
    np.testing.assert_allclose(obs["state"][:4], np.r_[np.cos(angles), np.sin(angles)], rtol=1e-6)
    tip = u.get_body_com("fingertip")[:2] - u.get_body_com("body0")[:2]
    np.testing.assert_allclose(tip, _fingertip(angles), atol=1e-6)
    assert env.success_radius == pytest.approx(0.009)  # the target sphere's size in the model
    assert info["is_success"] == (env.distance() < 0.009)
    other = make_reacher(image_size=32)
    assert np.array_equal(other.reset(seed=1)[0]["rgb"], obs["rgb"])  # seeded
    assert not np.array_equal(other.reset(seed=2)[0]["rgb"], obs["rgb"])  # the target moved
    env.close()
    other.close()


class _Expert:
    def __init__(self, envs: list) -> None:
        self.envs = envs

    def reset(self, slot: int) -> None: ...

    def act(self, observations, slots) -> np.ndarray:  # noqa: ANN001
        return np.stack(
            [ReacherExpert(self.envs[s])(o) for s, o in zip(slots, observations, strict=True)]
        )


def test_expert_reaches_the_target_and_random_actions_do_not():
    envs: list = []

    def make():  # noqa: ANN202
        envs.append(make_reacher(image_size=16))
        return envs[-1]

    assert success_rule(make_reacher(image_size=16)) == "final"
    expert = run_episodes(make, _Expert(envs), 10, num_envs=2, seed=100)
    assert all(r.success for r in expert)  # within 9 mm on the last step: it stays there
    assert all(r.length == 50 for r in expert)  # Reacher-v5 truncates at 50 steps

    class Random:
        rng = np.random.default_rng(0)

        def reset(self, slot: int) -> None: ...

        def act(self, observations, slots) -> np.ndarray:  # noqa: ANN001
            return self.rng.uniform(-1, 1, (len(slots), 2))

    random = run_episodes(lambda: make_reacher(image_size=16), Random(), 10, seed=100)
    assert sum(r.success for r in random) <= 2

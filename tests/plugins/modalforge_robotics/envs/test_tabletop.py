"""The tabletop env: gymnasium API, determinism, rendering (RGB and depth) and kinematic pushing."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")

from gymnasium.utils.env_checker import check_env  # noqa: E402

from modalforge.errors import SpecError  # noqa: E402
from modalforge_robotics.envs import register_envs  # noqa: E402
from modalforge_robotics.envs.physics import squares_overlap, valid  # noqa: E402
from modalforge_robotics.envs.render import RGB  # noqa: E402
from modalforge_robotics.envs.tabletop import (  # noqa: E402
    BLOCK_HALF,
    EFFECTOR_RADIUS,
    MAX_SPEED,
    TabletopEnv,
)


def _pixel(env: TabletopEnv, x: float, y: float) -> tuple[int, int]:
    n = env.image_size
    return int((1.0 - y) / 2.0 * n), int((x + 1.0) / 2.0 * n)


def _rollout(env: TabletopEnv, seed: int, steps: int, action_seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(action_seed)
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for _ in range(steps):
        obs, *_ = env.step(rng.uniform(-1, 1, 2).astype(np.float32))
        out.append(obs)
    return out


@pytest.mark.parametrize("env_id", ["modalforge/TabletopReach-v0", "modalforge/TabletopPush-v0"])
def test_gymnasium_check_env_passes(env_id):
    assert register_envs() == register_envs()  # idempotent
    env = gymnasium.make(env_id, render_mode="rgb_array")
    assert isinstance(env.unwrapped, TabletopEnv)
    assert env.unwrapped.task == ("reach" if "Reach" in env_id else "push")
    with _no_warnings():  # gymnasium's checker reports problems as warnings
        check_env(env.unwrapped)


class _no_warnings:
    """Warnings raised inside the block become failures."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)


def test_make_passes_keyword_arguments_to_the_env():
    register_envs()
    env = gymnasium.make(
        "modalforge/TabletopPush-v0", combinations="heldout", image_size=32, num_objects=2
    )
    obs, info = env.reset(seed=0)
    assert obs["rgb"].shape == (32, 32, 3) and len(env.unwrapped.blocks) == 2
    assert info["heldout"] and env.unwrapped.max_steps == 120


def test_observation_shapes_dtypes_and_space():
    env = TabletopEnv(task="push", image_size=48)
    obs, info = env.reset(seed=1)
    assert obs["rgb"].shape == (48, 48, 3) and obs["rgb"].dtype == np.uint8
    assert obs["depth"].shape == (48, 48) and obs["depth"].dtype == np.float32
    assert obs["state"].shape == (4,) and obs["state"].dtype == np.float32
    assert isinstance(obs["instruction"], str)
    assert env.observation_space.contains(obs)
    np.testing.assert_allclose(obs["state"][:2], env.ee, atol=1e-6)
    np.testing.assert_array_equal(obs["state"][2:], [0.0, 0.0])
    assert set(info) >= {"is_success", "color", "goal", "task"}
    assert info["task"] == "push" and info["goal"] in ("left", "right", "top", "bottom")
    assert info["color"] in obs["instruction"] and f"{info['goal']} goal" in obs["instruction"]
    obs, *_ = env.step(np.array([1.0, 0.0], dtype=np.float32))
    # the state's velocity is the displacement in units of the maximum speed
    np.testing.assert_allclose(obs["state"][2:], env.velocity, atol=1e-6)


def test_same_seed_same_episode_different_seed_differs():
    env_a, env_b = TabletopEnv(task="push"), TabletopEnv(task="push")
    a, b = _rollout(env_a, 7, 30), _rollout(env_b, 7, 30)
    for oa, ob in zip(a, b, strict=True):
        for key in ("rgb", "depth", "state"):
            np.testing.assert_array_equal(oa[key], ob[key])
        assert oa["instruction"] == ob["instruction"]
    c = _rollout(env_b, 8, 30)
    assert not np.array_equal(a[0]["rgb"], c[0]["rgb"])
    firsts = {TabletopEnv(task="reach").reset(seed=s)[0]["rgb"].tobytes() for s in range(10)}
    assert len(firsts) == 10


def test_depth_is_nearer_on_blocks_and_effector():
    env = TabletopEnv(task="reach")
    obs, _ = env.reset(seed=3)
    table = obs["depth"][0, 0]  # a corner: no block or effector starts there
    for x, y in env.blocks:
        r, c = _pixel(env, x, y)
        assert obs["depth"][r, c] < table
    r, c = _pixel(env, *env.ee)
    assert obs["depth"][r, c] < obs["depth"][_pixel(env, *env.blocks[0])]
    assert np.isclose(obs["depth"].max(), table)


def test_instruction_block_has_its_colour_in_the_image():
    for seed in range(12):
        env = TabletopEnv(task="reach", num_objects=4, render_mode="rgb_array")
        obs, info = env.reset(seed=seed)
        tx, ty = env.blocks[env.target]
        r, c = _pixel(env, tx, ty)
        assert tuple(obs["rgb"][r, c]) == RGB[info["color"]]
        assert env.colors[env.target] == info["color"] and info["color"] in obs["instruction"]
        # one block per colour: the instruction is never ambiguous
        assert len(set(env.colors)) == len(env.colors) == 4
        np.testing.assert_array_equal(env.render(), obs["rgb"])


def test_render_is_none_without_render_mode():
    env = TabletopEnv()
    env.reset(seed=0)
    assert env.render() is None


def _place(env: TabletopEnv, ee, blocks) -> None:
    env.ee = np.asarray(ee, dtype=float)
    env.blocks = np.asarray(blocks, dtype=float)


def test_pushing_moves_the_block_along_the_push_and_chains():
    env = TabletopEnv(task="push", num_objects=2)
    env.reset(seed=0)
    _place(env, [0.4, 0.0], [[0.0, 0.0], [-0.3, 0.0]])
    for _ in range(12):
        env.step(np.array([-1.0, 0.0], dtype=np.float32))
    # the effector moved 12 * MAX_SPEED left; the first block stays just ahead of it
    assert np.isclose(env.ee[0], 0.4 - 12 * MAX_SPEED)
    first, second = env.blocks
    assert np.isclose(first[0], env.ee[0] - EFFECTOR_RADIUS - BLOCK_HALF, atol=1e-3)
    assert abs(first[1]) < 1e-9
    # ... and the first block shoved the second one along without overlapping it
    assert second[0] < -0.3 and np.isclose(first[0] - second[0], 2 * BLOCK_HALF, atol=1e-3)
    assert not squares_overlap(first, second, BLOCK_HALF)


def test_a_block_pinned_at_the_edge_stops_the_effector():
    env = TabletopEnv(task="push", num_objects=1)
    env.reset(seed=0)
    bx = -1.0 + BLOCK_HALF
    _place(env, [bx + BLOCK_HALF + EFFECTOR_RADIUS + 0.01, 0.0], [[bx, 0.0]])
    before = env.ee.copy()
    obs, *_ = env.step(np.array([-1.0, 0.0], dtype=np.float32))
    np.testing.assert_array_equal(env.ee, before)
    np.testing.assert_array_equal(env.blocks, [[bx, 0.0]])
    np.testing.assert_array_equal(obs["state"][2:], [0.0, 0.0])


@pytest.mark.parametrize("task", ["reach", "push"])
def test_blocks_never_overlap_and_stay_on_the_table(task):
    from modalforge_robotics.envs.expert import TabletopExpert

    env = TabletopEnv(task=task, num_objects=4, max_steps=200)
    expert = TabletopExpert(env, noise=0.5, seed=0)
    rng = np.random.default_rng(0)
    moved = 0
    for seed in range(10):
        env.reset(seed=seed)
        start = env.blocks.copy()
        for t in range(150):
            action = expert.act() if t % 2 else rng.uniform(-1, 1, 2)
            _, _, terminated, _, _ = env.step(action)
            assert valid(env.ee, env.blocks, half=BLOCK_HALF, radius=EFFECTOR_RADIUS)
            assert np.all(np.abs(env.blocks) <= 1.0 - BLOCK_HALF + 1e-9)
            assert np.all(np.abs(env.ee) <= 1.0 - EFFECTOR_RADIUS + 1e-9)
            if terminated:
                break
        moved += int(np.abs(env.blocks - start).max() > 0.05)
    assert moved >= 3  # the check above saw real contacts


@pytest.mark.parametrize("task", ["reach", "push"])
def test_random_policy_rarely_succeeds(task):
    env = TabletopEnv(task=task)
    rng = np.random.default_rng(0)
    wins = 0
    for seed in range(20):
        env.reset(seed=seed)
        done, success = False, False
        while not done:
            _, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, 2))
            done, success = terminated or truncated, info["is_success"]
            assert reward == float(terminated)  # sparse reward, terminate on success
        wins += success
    assert wins / 20 <= 0.25


def test_reset_options_pin_the_combination():
    env = TabletopEnv(task="push")
    for seed in range(5):
        obs, info = env.reset(seed=seed, options={"color": "green", "goal": "right"})
        assert (info["color"], info["goal"]) == ("green", "right")
        assert "green block" in obs["instruction"] and "right goal" in obs["instruction"]
    train = TabletopEnv(task="push", combinations="train")
    with pytest.raises(SpecError, match="reset.options"):
        train.reset(seed=0, options={"color": "red", "goal": "right"})


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"task": "stack"}, "env.task"),
        ({"combinations": "test"}, "env.combinations"),
        ({"num_objects": 5}, "env.num_objects"),
        ({"image_size": 8}, "env.image_size"),
        ({"render_mode": "human"}, "env.render_mode"),
    ],
)
def test_bad_parameters_name_the_field(kwargs, field):
    with pytest.raises(SpecError, match=field):
        TabletopEnv(**kwargs)


def test_plugin_import_does_not_import_gymnasium():
    code = (
        "import sys, modalforge_robotics, modalforge_robotics.envs as e; "
        "assert 'gymnasium' not in sys.modules, 'gymnasium imported'; "
        "e.TabletopEnv; assert 'gymnasium' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_push_blocks_start_outside_every_goal_and_goals_are_drawn():
    from modalforge_robotics.envs.render import GOAL_RGB
    from modalforge_robotics.envs.tabletop import GOAL_REGIONS, in_goal

    env = TabletopEnv(task="push", num_objects=4)
    for seed in range(50):
        env.reset(seed=seed)
        assert not any(in_goal(b, g) for b in env.blocks for g in GOAL_REGIONS)
    obs, _ = env.reset(seed=0)
    size = obs["rgb"].shape[0]
    # each goal's colour at its region's centre: top is the image's first rows (y = +1)
    for goal, (x0, x1, y0, y1) in GOAL_REGIONS.items():
        col = int(((x0 + x1) / 2 + 1) / 2 * size)
        row = int((1 - (y0 + y1) / 2) / 2 * size)
        assert tuple(obs["rgb"][row, col]) == GOAL_RGB[goal], goal
    assert tuple(obs["rgb"][2, size // 2]) == GOAL_RGB["top"]

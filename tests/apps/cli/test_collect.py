"""``modalforge collect``: expert demonstrations written as robomimic HDF5 (with filter keys)
or a LeRobot folder, read back by the readers as the in-process collection; bad input exits 2
and leaves existing files alone."""

from __future__ import annotations

import numpy as np
import pytest

from modalforge_apps.cli import main
from modalforge_robotics.data import LeRobotDataset, read_robomimic
from modalforge_robotics.envs import TabletopEnv, TabletopExpert, collect_episodes


def test_robomimic_file_holds_the_expert_episodes_with_filter_keys(tmp_path, capsys):
    out = tmp_path / "push.hdf5"
    argv = ["collect", "--env", "tabletop_push", "--episodes", "5", "--out", str(out)]
    assert main([*argv, "--seed", "7", "--env-param", "combinations=train"]) == 0
    assert "5 episodes" in capsys.readouterr().out
    episodes, env_meta, keys = read_robomimic(out)
    assert env_meta["env_name"] == "tabletop_push" and env_meta["env_kwargs"] == {
        "combinations": "train"
    }
    assert keys == {"train": [f"demo_{i}" for i in range(4)], "valid": ["demo_4"]}
    env = TabletopEnv(task="push", combinations="train")
    same = collect_episodes(env, TabletopExpert(env, noise=0.3, seed=7), 5, seed=7)
    for got, ref in zip(episodes, same, strict=True):
        np.testing.assert_array_equal(got["actions"], ref["actions"])
        np.testing.assert_array_equal(got["obs"]["rgb"], ref["obs"]["rgb"])
        assert got["instruction"] == ref["instruction"] and not got["meta"]["heldout"]


def test_lerobot_folder_is_read_by_the_lerobot_reader(tmp_path, capsys):
    out = tmp_path / "reach"
    argv = ["collect", "--env", "tabletop_reach", "--episodes", "3", "--out", str(out)]
    assert main([*argv, "--format", "lerobot", "--noise", "0"]) == 0
    reader = LeRobotDataset(str(out), val_fraction=0.0)
    assert set(reader.modalities) >= {"image_front", "state", "instruction"}
    env = TabletopEnv(task="reach")
    ref = collect_episodes(env, TabletopExpert(env, noise=0.0), 3, seed=0)
    np.testing.assert_allclose(reader.store.actions[1], ref[1]["actions"], rtol=1e-6)


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--env", "gym_aloha/AlohaInsertion-v0"], "pip install gym-aloha"),
        (["--env", "tabletop_push", "--val-fraction", "1.5"], "--val-fraction"),
        (["--env", "tabletop_push", "--env-param", "colour"], "key=value"),
    ],
)
def test_bad_input_exits_2(tmp_path, capsys, extra, match):
    assert main(["collect", "--episodes", "1", "--out", str(tmp_path / "x.hdf5"), *extra]) == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "x.hdf5").exists()


def test_an_existing_file_is_never_overwritten(tmp_path, capsys):
    out = tmp_path / "mine.hdf5"
    out.write_bytes(b"a lab's own demonstrations")
    assert main(["collect", "--env", "tabletop_reach", "--episodes", "1", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == b"a lab's own demonstrations"


def test_clean_labels_record_the_experts_actions_under_execution_noise(tmp_path, capsys):
    out = tmp_path / "dart.hdf5"
    argv = ["collect", "--env", "tabletop_reach", "--episodes", "2", "--out", str(out)]
    assert main([*argv, "--noise", "0.5", "--clean-labels", "--val-fraction", "0"]) == 0
    episodes, env_meta, _ = read_robomimic(out)
    assert env_meta["clean_labels"] is True and env_meta["noise"] == 0.5
    env = TabletopEnv(task="reach")
    same = collect_episodes(env, TabletopExpert(env), 2, seed=0, execution_noise=0.5)
    for got, ref in zip(episodes, same, strict=True):
        np.testing.assert_array_equal(got["actions"], ref["actions"])

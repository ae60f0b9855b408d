"""Bad episode data: each case a DataError naming the file, episode and key, with the fix."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from modalforge.errors import DataError
from modalforge_robotics.data import RobomimicDataset, check_chw_image, write_robomimic
from tests.plugins.modalforge_robotics.data.test_robomimic import make_episode


def _write_raw(path, demos: dict[str, dict[str, np.ndarray]]) -> None:
    """A robomimic-like file written by hand (to hold what write_robomimic refuses)."""
    with h5py.File(path, "w") as f:
        for name, arrays in demos.items():
            g = f.create_group(f"data/{name}")
            for key, value in arrays.items():
                g.create_dataset(key, data=value)


def test_missing_observation_key_lists_what_the_file_has(tmp_path) -> None:
    path = tmp_path / "d.hdf5"
    write_robomimic(path, [make_episode(0)], {})
    with pytest.raises(DataError, match=r"d.hdf5: episode demo_0 has no observation 'wrist'") as e:
        RobomimicDataset(str(path), state_keys=["wrist"])
    assert "it has depth, rgb, state" in str(e.value) and "fix:" in str(e.value)


def test_obs_and_action_lengths_differ(tmp_path) -> None:
    ep = make_episode(0, steps=5)
    ep["obs"]["state"] = ep["obs"]["state"][:4]
    with pytest.raises(DataError, match="episode 0: observation 'state' has 4 rows but the ep"):
        write_robomimic(tmp_path / "d.hdf5", [ep], {})
    path = tmp_path / "raw.hdf5"
    _write_raw(path, {"demo_0": {"actions": np.zeros((5, 2)), "obs/state": np.zeros((4, 3))}})
    with pytest.raises(DataError, match="raw.hdf5: demo_0: observation 'state' has 4 steps but"):
        RobomimicDataset(str(path))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_actions_in_a_file(tmp_path, bad) -> None:
    path = tmp_path / "raw.hdf5"
    actions = np.zeros((5, 2))
    actions[3, 1] = bad
    _write_raw(path, {"demo_0": {"actions": actions, "obs/state": np.zeros((5, 3))}})
    with pytest.raises(DataError, match="demo_0: 'actions' has 1 NaN or infinite values \\(first"):
        RobomimicDataset(str(path))


def test_channels_first_images_and_wrong_dtype(tmp_path) -> None:
    path = tmp_path / "chw.hdf5"
    frames = np.zeros((5, 3, 8, 8), dtype=np.uint8)
    _write_raw(path, {"demo_0": {"actions": np.zeros((5, 2)), "obs/agentview_image": frames}})
    with pytest.raises(DataError, match="camera 'agentview_image' has shape .*channels-first") as e:
        RobomimicDataset(str(path), cameras={"agentview_image": "agentview"})
    assert "np.moveaxis" in str(e.value)
    path = tmp_path / "float.hdf5"
    frames = np.zeros((5, 8, 8, 3), dtype=np.float32)
    _write_raw(path, {"demo_0": {"actions": np.zeros((5, 2)), "obs/rgb": frames}})
    with pytest.raises(DataError, match="camera 'rgb' holds float32, not uint8"):
        RobomimicDataset(str(path), cameras={"rgb": "front"})


def test_hwc_image_where_chw_expected() -> None:
    with pytest.raises(DataError, match=r"obs\['rgb'\]: image of shape \(64, 64, 3\) is channels"):
        check_chw_image(np.zeros((64, 64, 3)), "obs['rgb']")
    check_chw_image(np.zeros((3, 64, 64)), "ok")  # (C, H, W) passes


def test_missing_empty_truncated_and_foreign_files(tmp_path) -> None:
    with pytest.raises(DataError, match="nope.hdf5 does not exist"):
        RobomimicDataset(str(tmp_path / "nope.hdf5"))
    empty = tmp_path / "empty.hdf5"
    empty.touch()
    with pytest.raises(DataError, match=r"empty.hdf5 is empty \(0 bytes\)"):
        RobomimicDataset(str(empty))
    good = tmp_path / "good.hdf5"
    write_robomimic(good, [make_episode(i, steps=30, h=16, w=16) for i in range(3)], {})
    cut = tmp_path / "cut.hdf5"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DataError, match="cut.hdf5.*truncated or corrupt"):
        RobomimicDataset(str(cut))
    no_demos = tmp_path / "none.hdf5"
    with h5py.File(no_demos, "w") as f:
        f.create_group("data")
    with pytest.raises(DataError, match="none.hdf5: no demonstrations under data/"):
        RobomimicDataset(str(no_demos))
    foreign = tmp_path / "foreign.hdf5"
    with h5py.File(foreign, "w") as f:
        f.create_dataset("images", data=np.zeros(3))
    with pytest.raises(DataError, match="has no 'data' group \\(it holds images\\)"):
        RobomimicDataset(str(foreign))


def test_bad_episode_fields() -> None:
    ep = make_episode(0)
    with pytest.raises(DataError, match="episode 2: 'instruction' must be a str"):
        write_robomimic(
            "unused.hdf5", [make_episode(1), make_episode(2), dict(ep, instruction=3)], {}
        )
    with pytest.raises(DataError, match="episode 0: meta key 'lang' is reserved"):
        write_robomimic("unused.hdf5", [dict(ep, meta={"lang": "x"})], {})
    with pytest.raises(DataError, match="no episodes to write"):
        write_robomimic("unused.hdf5", [], {})

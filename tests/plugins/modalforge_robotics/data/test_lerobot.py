"""LeRobot v2 folders: written, read back through the same windows as robomimic."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from modalforge.errors import DataError
from modalforge_robotics.data import (
    PAD_KEY,
    LeRobotDataset,
    RobomimicDataset,
    write_lerobot,
    write_robomimic,
)
from tests.plugins.modalforge_robotics.data.test_robomimic import make_episode


def test_lerobot_folder_layout_and_samples_match_robomimic(tmp_path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    episodes = [make_episode(i, steps=4 + i) for i in range(4)]
    for ep in episodes:
        del ep["obs"]["depth"]  # no standard depth feature in LeRobot
    folder = write_lerobot(tmp_path / "ds", episodes, fps=10)
    info = json.loads((folder / "meta/info.json").read_text())
    assert info["fps"] == 10 and info["total_episodes"] == 4 and info["total_frames"] == 22
    assert info["features"]["observation.images.front"]["dtype"] == "image"
    table = pq.read_table(folder / "data/chunk-000/episode_000002.parquet")
    assert table.num_rows == 6 and "observation.state" in table.column_names
    lines = (folder / "meta/tasks.jsonl").read_text().splitlines()
    assert [json.loads(line)["task"] for line in lines] == [f"push the block {i}" for i in range(4)]
    lr = LeRobotDataset(str(folder), history=2, chunk=3, val_fraction=0.0)
    write_robomimic(tmp_path / "d.hdf5", episodes, {}, split={"train": [0, 1, 2, 3]})
    rm = RobomimicDataset(str(tmp_path / "d.hdf5"), history=2, chunk=3)
    assert set(lr.modalities) == {"image_front", "state", "instruction"}
    assert lr.modalities["image_front"].shape == rm.modalities["image_front"].shape == (6, 4, 6)
    a, b = lr.load("train"), rm.load("train")
    assert len(a) == len(b) == 22
    for i in (0, 3, 4, 21):
        for k in ("image_front", "state", "target", PAD_KEY):  # PNG is lossless
            torch.testing.assert_close(a[i][k], b[i][k])
        assert a[i]["instruction"] == b[i]["instruction"]
    np.testing.assert_allclose(lr.normalizer.low, rm.normalizer.low)


def test_lerobot_bad_folders(tmp_path) -> None:
    pytest.importorskip("pyarrow")
    with pytest.raises(DataError, match="not a LeRobot dataset folder \\(no meta/info.json\\)"):
        LeRobotDataset(str(tmp_path))
    ep = make_episode(0)
    folder = write_lerobot(tmp_path / "ds", [ep])
    info = json.loads((folder / "meta/info.json").read_text())
    info["features"]["observation.images.wrist"] = {"dtype": "video", "shape": [4, 6, 3]}
    (folder / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(DataError, match="feature 'observation.images.wrist' is stored as video"):
        LeRobotDataset(str(folder))
    folder = write_lerobot(tmp_path / "ds2", [ep])
    with pytest.raises(DataError, match="episode_000000 has no observation 'observation.joint'"):
        LeRobotDataset(str(folder), state_keys=["observation.joint"])

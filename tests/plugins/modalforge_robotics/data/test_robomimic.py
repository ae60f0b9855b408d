"""robomimic HDF5 writer and reader: round trip, layout, windows, splits, normalisation."""

from __future__ import annotations

import json
import pickle

import h5py
import numpy as np
import pytest
import torch

from modalforge.errors import DataError
from modalforge_robotics.data import (
    PAD_KEY,
    ActionNormalizer,
    RobomimicDataset,
    read_robomimic,
    write_robomimic,
)


def make_episode(seed: int, steps: int = 5, h: int = 4, w: int = 6, a: int = 2) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "obs": {
            "rgb": rng.integers(0, 256, (steps, h, w, 3), dtype=np.uint8),
            "depth": rng.random((steps, h, w), dtype=np.float32),
            "state": rng.standard_normal((steps, 3)).astype(np.float32),
        },
        "actions": rng.uniform(-2, 2, (steps, a)).astype(np.float32),
        "rewards": rng.random(steps, dtype=np.float32),
        "success": bool(seed % 2),
        "instruction": f"push the block {seed}",
        "meta": {"task": "push", "seed": seed, "goal": [0.1, 0.2]},
    }


@pytest.fixture
def episodes() -> list[dict]:
    return [make_episode(i, steps=4 + i) for i in range(6)]


def test_round_trip_and_plain_h5py_layout(tmp_path, episodes) -> None:
    path = tmp_path / "demo.hdf5"
    write_robomimic(path, episodes, {"env_name": "tabletop"}, split={"train": [0, 1, 2, 3]})
    back, env_meta, masks = read_robomimic(path)
    assert env_meta == {"env_name": "tabletop"}
    assert masks == {"train": ["demo_0", "demo_1", "demo_2", "demo_3"]}
    assert len(back) == len(episodes)
    for ep, got in zip(episodes, back, strict=True):
        assert set(got["obs"]) == set(ep["obs"])
        for k in ep["obs"]:
            np.testing.assert_array_equal(got["obs"][k], ep["obs"][k])
            assert got["obs"][k].dtype == ep["obs"][k].dtype
        np.testing.assert_array_equal(got["actions"], ep["actions"])
        np.testing.assert_array_equal(got["rewards"], ep["rewards"])
        assert got["instruction"] == ep["instruction"]
        assert got["success"] == ep["success"]
        assert got["meta"] == ep["meta"]
    with h5py.File(path, "r") as f:
        assert f["data"].attrs["total"] == sum(4 + i for i in range(6))
        assert json.loads(f["data"].attrs["env_args"]) == {"env_name": "tabletop"}
        demo = f["data/demo_2"]
        assert demo.attrs["num_samples"] == 6
        assert demo["obs/rgb"].shape == (6, 4, 6, 3) and demo["obs/rgb"].dtype == np.uint8
        assert demo["actions"].shape == (6, 2)
        np.testing.assert_array_equal(demo["dones"][()], [0, 0, 0, 0, 0, 1])
        meta = json.loads(demo.attrs["ep_meta"])
        assert meta["lang"] == "push the block 2" and meta["success"] is False
        assert [n.decode() for n in f["mask/train"][()]] == ["demo_0", "demo_1", "demo_2", "demo_3"]


def test_atomic_write_keeps_old_file_on_failure(tmp_path, episodes) -> None:
    path = tmp_path / "demo.hdf5"
    write_robomimic(path, episodes[:2], {})
    before = path.read_bytes()
    bad = dict(episodes[0], actions=np.full((4, 2), np.nan, dtype=np.float32))
    with pytest.raises(DataError, match="episode 1: 'actions' has 8 NaN"):
        write_robomimic(path, [episodes[0], bad], {})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.hdf5"]


def test_modalities_and_default_rule(tmp_path, episodes) -> None:
    path = tmp_path / "d.hdf5"
    write_robomimic(path, episodes, {})
    r = RobomimicDataset(str(path), history=2, chunk=3)
    m = r.modalities
    assert m["image_front"].shape == (6, 4, 6) and m["image_front"].kind == "image2d"
    assert m["depth_front"].shape == (2, 4, 6)
    assert m["state"].shape == (6,)
    assert m["instruction"].dtype == "str"
    assert r.target.shape == (3, 2) and r.target.num_outputs == 6


def test_windows_at_episode_edges(tmp_path, episodes) -> None:
    path = tmp_path / "d.hdf5"
    write_robomimic(path, episodes, {}, split={"train": [0, 1, 2, 3, 4, 5]})
    r = RobomimicDataset(str(path), history=3, chunk=3, normalize="none")
    data = r.load("train")
    assert len(data) == sum(4 + i for i in range(6))
    ep = episodes[0]  # 4 steps; samples 0..3 are its steps
    first, last = data[0], data[3]
    # history before the first frame repeats the first frame (oldest first on channels)
    rgb = ep["obs"]["rgb"]
    want = np.concatenate([rgb[i].transpose(2, 0, 1) for i in (0, 0, 0)]) / 255.0
    np.testing.assert_allclose(first["image_front"].numpy(), want, rtol=1e-6)
    want = np.concatenate([rgb[i].transpose(2, 0, 1) for i in (1, 2, 3)]) / 255.0
    np.testing.assert_allclose(last["image_front"].numpy(), want, rtol=1e-6)
    np.testing.assert_array_equal(
        data[1]["state"].numpy(), ep["obs"]["state"][[0, 0, 1]].reshape(-1)
    )
    np.testing.assert_array_equal(data[1]["depth_front"].numpy(), ep["obs"]["depth"][[0, 0, 1]])
    # the chunk after the last action repeats it, flagged in action_is_pad
    np.testing.assert_array_equal(first["target"].numpy(), ep["actions"][[0, 1, 2]])
    assert first[PAD_KEY].tolist() == [False, False, False]
    np.testing.assert_array_equal(data[2]["target"].numpy(), ep["actions"][[2, 3, 3]])
    assert data[2][PAD_KEY].tolist() == [False, False, True]
    np.testing.assert_array_equal(last["target"].numpy(), ep["actions"][[3, 3, 3]])
    assert last[PAD_KEY].tolist() == [False, True, True]
    assert last["instruction"] == "push the block 0"
    # the next sample starts episode 1 afresh
    np.testing.assert_array_equal(data[4]["target"].numpy(), episodes[1]["actions"][:3])
    assert r.metadata("train")["episode"][3:5] == ["demo_0", "demo_1"]
    assert r.metadata("train")["step"][3:5] == [3, 0]


def test_split_by_episode_and_filter_keys(tmp_path, episodes) -> None:
    path = tmp_path / "d.hdf5"
    write_robomimic(path, episodes * 2, {})
    r = RobomimicDataset(str(path), val_fraction=0.25, seed=3)
    assert r.splits == ("train", "test")
    train = set(r.metadata("train")["episode"])
    test = set(r.metadata("test")["episode"])
    assert not train & test and len(train | test) == 12 and len(test) == 3
    assert (
        RobomimicDataset(str(path), val_fraction=0.25, seed=3).metadata("test")["episode"]
        == (r.metadata("test")["episode"])
    )
    keyed = tmp_path / "k.hdf5"
    write_robomimic(keyed, episodes, {}, split={"train": [0, 2, 3, 5], "valid": [1, 4]})
    r = RobomimicDataset(str(keyed))
    assert r.splits == ("train", "test")
    assert sorted(set(r.metadata("test")["episode"])) == ["demo_1", "demo_4"]
    with pytest.raises(DataError, match="(?s)has no split .val.*use one of: train, test"):
        r.load("val")
    overlap = tmp_path / "o.hdf5"
    write_robomimic(overlap, episodes, {}, split={"train": [0, 1], "valid": [1]})
    with pytest.raises(DataError, match="demo_1 is in both filter keys"):
        RobomimicDataset(str(overlap))


def test_normalisation_uses_training_episodes_only(tmp_path, episodes) -> None:
    held_out = make_episode(99, steps=5)
    held_out["actions"][:] = 10.0  # far outside the training range
    path = tmp_path / "d.hdf5"
    write_robomimic(path, [*episodes, held_out], {}, split={"train": [0, 1, 2, 3, 4, 5]})
    r = RobomimicDataset(str(path), chunk=2)
    train_actions = np.concatenate([e["actions"] for e in episodes])
    np.testing.assert_allclose(r.normalizer.low, train_actions.min(0), rtol=1e-6)
    np.testing.assert_allclose(r.normalizer.high, train_actions.max(0), rtol=1e-6)
    targets = torch.stack([s["target"] for s in r.load("train")])
    assert targets.min() >= -1 - 1e-6 and targets.max() <= 1 + 1e-6
    assert np.isclose(targets.min().item(), -1) and np.isclose(targets.max().item(), 1)
    # the episode outside the training split maps outside [-1, 1]
    full = RobomimicDataset(str(path), chunk=2, use_filter_keys=False, val_fraction=0.0)
    assert full.normalizer.high.max() == 10.0  # (all episodes: includes the held-out one)
    held = r.normalizer.normalize(held_out["actions"])
    assert (held > 1).all()
    # round trip, numpy and torch, and through the stored state
    a = np.random.default_rng(0).uniform(-3, 3, (7, 2)).astype(np.float32)
    np.testing.assert_allclose(r.normalizer.unnormalize(r.normalizer.normalize(a)), a, atol=1e-5)
    restored = ActionNormalizer.from_state_dict(
        json.loads(json.dumps(r.state_dict()))["action_normalizer"]
    )
    t = torch.from_numpy(a)
    torch.testing.assert_close(restored.unnormalize(restored.normalize(t)), t, atol=1e-5, rtol=0)
    torch.testing.assert_close(restored.normalize(t), torch.from_numpy(r.normalizer.normalize(a)))


def test_constant_action_dimension_maps_to_zero() -> None:
    n = ActionNormalizer.fit([np.array([[1.0, 5.0], [3.0, 5.0]])], "minmax")
    np.testing.assert_allclose(n.normalize(np.array([[1.0, 5.0], [3.0, 6.0]])), [[-1, 0], [1, 1]])
    np.testing.assert_allclose(n.unnormalize(n.normalize(np.array([2.0, 7.0]))), [2.0, 7.0])


@pytest.mark.parametrize("in_memory", [True, False])
def test_dataloader_workers_give_the_same_samples(tmp_path, episodes, in_memory) -> None:
    path = tmp_path / "d.hdf5"
    write_robomimic(path, episodes, {})
    r = RobomimicDataset(str(path), history=2, chunk=2, in_memory=in_memory)
    data = r.load("train")
    data[0]  # opens the file in this process (an h5py handle must not reach the workers)
    clone = pickle.loads(pickle.dumps(data))
    np.testing.assert_array_equal(clone[5]["image_front"], data[5]["image_front"])
    batches = list(torch.utils.data.DataLoader(data, batch_size=4, num_workers=2))
    serial = list(torch.utils.data.DataLoader(data, batch_size=4, num_workers=0))
    assert len(batches) == len(serial)
    for b, s in zip(batches, serial, strict=True):
        for k in ("image_front", "depth_front", "state", "target", PAD_KEY):
            torch.testing.assert_close(b[k], s[k])
        assert b["instruction"] == s["instruction"]
    assert serial[0][PAD_KEY].dtype == torch.bool and serial[0][PAD_KEY].shape == (4, 2)
    eager = RobomimicDataset(str(path), history=2, chunk=2, in_memory=True).load("train")
    for i in (0, 1, 9):  # the lazy reads (duplicated history rows) equal the in-memory ones
        for k in ("image_front", "depth_front", "state"):
            torch.testing.assert_close(data[i][k], eager[i][k])


def test_state_samples_for_fitting_match_full_samples(tmp_path, episodes) -> None:
    path = tmp_path / "d.hdf5"
    write_robomimic(path, episodes, {})
    data = RobomimicDataset(str(path), history=2).load("train")
    fast = list(data.modality_samples("state"))
    assert len(fast) == len(data)
    torch.testing.assert_close(fast[7], data[7]["state"])

"""The readers in the engine: registration, collate of ``action_is_pad``, state standardisation."""

from __future__ import annotations

import numpy as np
import torch

from modalforge.engine.data import EpochLoader
from modalforge.registry import Registrar
from modalforge_robotics import data as robotics_data
from modalforge_robotics.data import PAD_KEY, write_robomimic
from modalforge_transforms.tabular import Standardize
from tests.core.toy import toy_registry
from tests.plugins.modalforge_robotics.data.test_robomimic import make_episode


def test_registered_and_batched_by_the_engine(tmp_path) -> None:
    registry = toy_registry()
    robotics_data.register(Registrar(registry, "robotics"))
    info = registry.get("dataset", "robomimic")
    assert registry.get("dataset", "lerobot").factory is robotics_data.LeRobotDataset
    write_robomimic(tmp_path / "d.hdf5", [make_episode(i) for i in range(3)], {})
    reader = info.factory(path=str(tmp_path / "d.hdf5"), chunk=4, val_fraction=0.0)
    loader = EpochLoader(
        reader.load("train"),
        batch_size=5,
        shuffle=False,
        seed=0,
        num_workers=0,
        drop_last=False,
        pin_memory=False,
        field="data",
    )
    batch = next(iter(loader.epoch(0)))
    assert batch[PAD_KEY].dtype == torch.bool and batch[PAD_KEY].shape == (5, 4)
    # episode 0 has 5 steps: sample 4 (its last) pads 3 of 4 chunk steps
    assert batch[PAD_KEY][4].tolist() == [False, True, True, True]
    assert batch["target"].shape == (5, 4, 2)
    assert batch["instruction"] == ["push the block 0"] * 5


def test_standardize_transform_fits_state_on_the_training_split(tmp_path) -> None:
    write_robomimic(tmp_path / "d.hdf5", [make_episode(i) for i in range(6)], {})
    reader = robotics_data.RobomimicDataset(str(tmp_path / "d.hdf5"), val_fraction=0.3, seed=1)
    step = Standardize(reader.modalities["state"], skip_binary=False)
    step.fit(reader.load("train").modality_samples("state"))
    np.testing.assert_allclose(step.mean.numpy(), reader.state_mean, rtol=1e-5)
    np.testing.assert_allclose(step.std.numpy(), reader.state_std, rtol=1e-5)
    test = np.stack([s["state"].numpy() for s in reader.load("test")])
    train = np.stack([s["state"].numpy() for s in reader.load("train")])
    np.testing.assert_allclose(train.mean(0), reader.state_mean, rtol=1e-5)
    assert not np.allclose(test.mean(0), reader.state_mean)  # fitted on train only

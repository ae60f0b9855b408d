"""The ``robotics`` domain: defaults follow the observation features the episode data declares
(named exactly as the readers name them), the loss follows the head, the spec overrides every
default, and a ``domain: robotics`` spec trains end to end."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from modalforge.modality import ModalityKind
from modalforge.plugin import get_registry, set_host
from modalforge.spec import parse_spec
from modalforge_apps.cli import main
from modalforge_robotics.adapter import RoboticsDomain
from modalforge_robotics.data import (
    LeRobotDataset,
    RobomimicDataset,
    write_lerobot,
    write_robomimic,
)
from modalforge_robotics.data.features import observation_features


def _episode(seed: int, steps: int = 6) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "obs": {
            "agentview_image": rng.integers(0, 256, (steps, 8, 8, 3), dtype=np.uint8),
            "wrist_image": rng.integers(0, 256, (steps, 8, 8, 3), dtype=np.uint8),
            "wrist_depth": rng.random((steps, 8, 8), dtype=np.float32),
            "eef_pos": rng.standard_normal((steps, 3)).astype(np.float32),
            "gripper": rng.standard_normal((steps, 1)).astype(np.float32),
        },
        "actions": rng.uniform(-1, 1, (steps, 2)).astype(np.float32),
        "rewards": np.zeros(steps, dtype=np.float32),
        "success": True,
        "instruction": "lift the cube",
        "meta": {},
    }


@pytest.fixture
def robomimic_file(tmp_path):
    return write_robomimic(tmp_path / "lab.hdf5", [_episode(i) for i in range(4)], {})


def test_features_are_the_modalities_the_robomimic_reader_yields(robomimic_file):
    params = {"path": str(robomimic_file)}
    kinds = observation_features("robomimic", params)
    reader = RobomimicDataset(str(robomimic_file))
    assert set(kinds) == set(reader.modalities)
    assert {k: v.value for k, v in kinds.items()} == {
        "image_agentview": "image2d",
        "image_wrist": "image2d",
        "depth_wrist": "depth",
        "state": "lowdim",
        "instruction": "text",
    }
    # the reader's own params rename and drop observations the same way
    only = {**params, "cameras": {"wrist_image": "hand"}, "depth": {}, "state_keys": ["eef_pos"]}
    narrowed = RobomimicDataset(**only)
    assert set(observation_features("robomimic", only)) == set(narrowed.modalities)
    assert set(narrowed.modalities) == {"image_hand", "state", "instruction"}


def test_features_of_a_lerobot_folder_and_of_built_in_demonstrations(tmp_path):
    episodes = [_episode(i) for i in range(3)]
    for ep in episodes:  # written as observation.images.top and observation.state
        obs = ep["obs"]
        ep["obs"] = {
            "top_image": obs["agentview_image"],
            "state": np.concatenate([obs["eef_pos"], obs["gripper"]], 1),
        }
    folder = write_lerobot(tmp_path / "ds", episodes, fps=10)
    kinds = observation_features("lerobot", {"path": str(folder)})
    assert set(kinds) == set(LeRobotDataset(str(folder)).modalities)
    assert kinds["image_top"] == ModalityKind.IMAGE2D and kinds["state"] == ModalityKind.LOWDIM
    tabletop = observation_features("demonstrations", {"env": "tabletop_push", "depth": {}})
    assert set(tabletop) == {"image_front", "state", "instruction"}
    assert "depth_front" in observation_features("demonstrations", {"env": "tabletop_reach"})
    assert set(observation_features("demonstrations", {"env": "reacher"})) == {
        "image_front",
        "state",
        "instruction",
    }
    # a file that is not there yet: no defaults, and the reader reports it when built
    assert observation_features("robomimic", {"path": str(tmp_path / "none.hdf5")}) == {}


def test_defaults_per_feature_film_language_and_the_head_loss(robomimic_file):
    spec = {"data": {"dataset": {"name": "robomimic", "params": {"path": str(robomimic_file)}}}}
    defaults = RoboticsDomain().preset_for(spec)
    enc = defaults["model"]["encoders"]
    assert set(enc) == {"image_agentview", "image_wrist", "depth_wrist", "state", "instruction"}
    for name in ("image_agentview", "image_wrist", "depth_wrist"):
        assert enc[name]["name"] == "visual"
        assert enc[name]["params"]["condition_on"] == ["instruction"]
    assert enc["instruction"]["name"] == "clip_text"
    assert defaults["data"]["transforms"]["eval"] == {"state": ["standardize"]}
    assert defaults["model"]["head"]["name"] == "mse_action" and defaults["loss"] == "action_mse"

    blind = RoboticsDomain(language="none").preset_for(spec)["model"]["encoders"]
    assert "instruction" not in blind and "condition_on" not in blind["image_wrist"]["params"]
    late = RoboticsDomain(language="concat").preset_for(spec)["model"]["encoders"]
    assert "instruction" in late and "condition_on" not in late["image_wrist"]["params"]

    with_gmm = {**spec, "model": {"head": {"name": "gmm_action", "params": {"modes": 3}}}}
    gmm = RoboticsDomain().preset_for(with_gmm)
    assert gmm["loss"] == "action_gmm_nll" and "head" not in gmm["model"]  # the spec's head
    assert RoboticsDomain(head="binned_action").preset_for(spec)["loss"] == "action_bins_ce"
    with pytest.raises(ValueError, match="language"):
        RoboticsDomain(language="words")


def test_the_spec_overrides_every_default(robomimic_file):
    spec = parse_spec(
        {
            "name": "lab",
            "domain": {"name": "robotics", "params": {"widths": [16, 16]}},
            "data": {
                "dataset": {
                    "name": "robomimic",
                    "params": {"path": str(robomimic_file), "chunk": 2, "depth": {}},
                }
            },
            "model": {"encoders": {"image_wrist": {"name": "visual", "params": {"pool": "avg"}}}},
            "train": {"lr": 3e-4},
        }
    )
    wrist = spec.model.encoders["image_wrist"]
    assert wrist.params["pool"] == "avg" and wrist.params["widths"] == [16, 16]
    assert set(spec.model.encoders) == {"image_agentview", "image_wrist", "state", "instruction"}
    assert spec.train.lr == 3e-4 and spec.loss.name == "action_mse"


def test_catalogue_names_registered_components():
    assert RoboticsDomain().missing(get_registry()) == []


def test_domain_robotics_spec_trains_end_to_end(tmp_path, robomimic_file):
    spec = {
        "name": "lab",
        "domain": "robotics",
        "data": {
            "dataset": {
                "name": "robomimic",
                "params": {"path": str(robomimic_file), "chunk": 2, "val_fraction": 0.25},
            },
            "batch_size": 8,
        },
        "train": {"epochs": 1, "progress": False},
    }
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(spec))
    set_host(None)
    assert main(["train", str(path), "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "checkpoints").is_dir()
    set_host(None)

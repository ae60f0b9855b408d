"""Episode data of the robotics domain: the in-memory :class:`Episode`, robomimic's HDF5 layout
(writer and the ``robomimic`` reader) and LeRobot's dataset folder (the ``lerobot`` reader).

h5py, pyarrow and PIL are imported when a file is read or written, never at plugin import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge_robotics.data.demonstrations import DemonstrationsDataset
from modalforge_robotics.data.episode import Episode, check_chw_image, check_episode
from modalforge_robotics.data.lerobot import LeRobotDataset, write_lerobot
from modalforge_robotics.data.normalize import ActionNormalizer
from modalforge_robotics.data.robomimic import RobomimicDataset, read_robomimic, write_robomimic
from modalforge_robotics.data.windows import PAD_KEY

if TYPE_CHECKING:
    from modalforge.registry import Registrar

__all__ = [
    "PAD_KEY",
    "ActionNormalizer",
    "DemonstrationsDataset",
    "Episode",
    "LeRobotDataset",
    "RobomimicDataset",
    "check_chw_image",
    "check_episode",
    "read_robomimic",
    "register",
    "write_lerobot",
    "write_robomimic",
]


def register(registry: Registrar) -> None:
    """Register the ``robomimic``, ``lerobot`` and ``demonstrations`` episode readers."""
    registry.dataset("robomimic", RobomimicDataset, tags=("robotics", "hdf5", "episodes"))
    registry.dataset("lerobot", LeRobotDataset, tags=("robotics", "parquet", "episodes"))
    registry.dataset(
        "demonstrations", DemonstrationsDataset, tags=("robotics", "expert", "episodes")
    )

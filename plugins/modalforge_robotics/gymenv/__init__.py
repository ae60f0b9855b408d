"""External gymnasium environments behind modalforge's observation layout (``rgb``, ``state``,
``instruction`` and ``info["is_success"]``)."""

from modalforge_robotics.gymenv.factory import BUILT_IN, expert_for, make_env
from modalforge_robotics.gymenv.reacher import (
    PixelsAndProprio,
    ReacherExpert,
    joint_targets,
    make_reacher,
)

__all__ = [
    "BUILT_IN",
    "PixelsAndProprio",
    "ReacherExpert",
    "expert_for",
    "joint_targets",
    "make_env",
    "make_reacher",
]

"""External gymnasium environments behind modalforge's observation layout (``rgb``, ``state``,
``instruction`` and ``info["is_success"]``)."""

from modalforge_robotics.gymenv.reacher import (
    PixelsAndProprio,
    ReacherExpert,
    joint_targets,
    make_reacher,
)

__all__ = ["PixelsAndProprio", "ReacherExpert", "joint_targets", "make_reacher"]

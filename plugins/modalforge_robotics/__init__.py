"""The robotics perception domain: episode data sets (robomimic HDF5, LeRobot folders),
observation encoders, action heads, the procedural tabletop environment with its scripted
expert, closed-loop rollouts and the ``robotics`` domain adapter (``domain: robotics``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge.plugin import hookimpl

if TYPE_CHECKING:
    from modalforge.registry import Registrar

__all__ = ["register_components"]


@hookimpl
def register_components(registry: Registrar) -> None:
    """Each submodule registers its own components."""
    from modalforge_robotics import data, encoders, heads
    from modalforge_robotics.adapter import RoboticsDomain

    data.register(registry)
    encoders.register(registry)
    heads.register(registry)
    registry.adapter(
        "robotics", RoboticsDomain, tags=("robotics", "image2d", "depth", "lowdim", "text")
    )

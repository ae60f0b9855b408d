"""The built-in procedural tabletop environment (numpy RGB-D, coloured blocks, goal regions,
language instructions), its scripted expert, held-out instruction–object combinations and an
episode collector.

gymnasium is imported when an env class is first used (attribute access below), never at
plugin import. ``register_envs()`` registers the gymnasium ids; nothing is registered in
modalforge's component registry (environments are not a component kind).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from modalforge_robotics.envs.combinations import HELDOUT, Combination, combination_split
from modalforge_robotics.envs.registration import ENV_IDS, register_envs

__all__ = [
    "ENV_IDS",
    "HELDOUT",
    "Combination",
    "TabletopEnv",
    "TabletopExpert",
    "collect_episodes",
    "combination_split",
    "register_envs",
]

_LAZY = {
    "TabletopEnv": "modalforge_robotics.envs.tabletop",
    "TabletopExpert": "modalforge_robotics.envs.expert",
    "collect_episodes": "modalforge_robotics.envs.collect",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

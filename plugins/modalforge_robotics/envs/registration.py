"""Gymnasium ids of the tabletop: modalforge/TabletopReach-v0 and modalforge/TabletopPush-v0."""

from __future__ import annotations

ENV_IDS: dict[str, str] = {
    "modalforge/TabletopReach-v0": "reach",
    "modalforge/TabletopPush-v0": "push",
}


def register_envs() -> tuple[str, ...]:
    """Register the tabletop ids with gymnasium (idempotent); returns the ids.

    The env truncates itself at ``max_steps``, so no ``TimeLimit`` wrapper is added; keyword
    arguments of ``gymnasium.make`` reach :class:`TabletopEnv`.
    """
    import gymnasium

    for env_id, task in ENV_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(
                id=env_id,
                entry_point="modalforge_robotics.envs.tabletop:TabletopEnv",
                kwargs={"task": task},
            )
    return tuple(ENV_IDS)

"""Environments by name, each with its scripted expert: the built-in tabletop tasks, MuJoCo's
``Reacher-v5`` from pixels, and any other installed gymnasium id (with a clear error naming the
package that provides an id that is not installed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modalforge.errors import SpecError

# ids of well-known environment packages → the pip package that registers them
PROVIDERS = {
    "gym_pusht": "gym-pusht",
    "gym_aloha": "gym-aloha",
    "gym_xarm": "gym-xarm",
    "ALE": "ale-py",
}
BUILT_IN = ("tabletop_reach", "tabletop_push", "reacher")


def make_env(env: str, **params: Any) -> Any:  # noqa: ANN401 - a gymnasium.Env
    """The environment ``env``: ``tabletop_reach`` / ``tabletop_push`` (params of
    :class:`~modalforge_robotics.envs.TabletopEnv`, e.g. ``combinations``), ``reacher``
    (``image_size``, ``success_radius``), LeRobot's ``gym_pusht/PushT-v0`` (pixels + agent
    position, ``image_size``), or a gymnasium id (``gymnasium.make(env, **params)``)."""
    if env in ("tabletop_reach", "tabletop_push"):
        from modalforge_robotics.envs import TabletopEnv

        return TabletopEnv(task=env.split("_")[1], render_mode="rgb_array", **params)
    if env in ("reacher", "Reacher-v5"):
        from modalforge_robotics.gymenv.reacher import make_reacher

        return make_reacher(**params)
    import gymnasium as gym

    from modalforge_robotics.envs import register_envs

    register_envs()
    namespace = env.split("/")[0] if "/" in env else None
    if namespace in PROVIDERS:
        try:
            __import__(namespace)  # importing the package registers its ids
        except ImportError:
            raise SpecError(
                "--env",
                f"environment {env!r} comes from the {PROVIDERS[namespace]!r} package, which is "
                "not installed",
                hint=f"pip install {PROVIDERS[namespace]}",
            ) from None
    if namespace == "gym_pusht":  # LeRobot's PushT, seen as pixels + the agent's position
        from modalforge_robotics.gymenv.pusht import make_pusht

        return make_pusht(env, **params)
    if env not in gym.registry:
        known = ", ".join([*BUILT_IN, *sorted(k for k in gym.registry if "/" in k)][:12])
        raise SpecError(
            "--env",
            f"no environment {env!r} is installed",
            hint=f"use one of: {known}, or a gymnasium id; other ids need their package "
            "installed (e.g. gym-pusht for gym_pusht/PushT-v0)",
        )
    return gym.make(env, **params)


def collect_expert_episodes(
    env: Any,  # noqa: ANN401 - a built-in environment
    episodes: int,
    *,
    noise: float,
    seed: int = 0,
    clean_labels: bool = False,
) -> list[dict[str, Any]]:
    """Seeded episodes of ``env``'s scripted expert with Gaussian action ``noise``: in the
    recorded actions, or with ``clean_labels`` only in the executed ones (DART; see
    :func:`~modalforge_robotics.envs.collect_episodes`)."""
    from modalforge_robotics.envs import collect_episodes

    expert = expert_for(env, noise=0.0 if clean_labels else noise, seed=seed)
    executed = noise if clean_labels else 0.0
    return collect_episodes(env, expert, episodes, seed=seed, execution_noise=executed)


def expert_for(env: Any, noise: float = 0.0, seed: int = 0) -> Callable[[Any], Any]:  # noqa: ANN401
    """The scripted expert of a built-in environment (tabletop, Reacher)."""
    from modalforge_robotics.envs.tabletop import TabletopEnv
    from modalforge_robotics.gymenv.reacher import PixelsAndProprio, ReacherExpert

    if isinstance(env.unwrapped, TabletopEnv):
        from modalforge_robotics.envs import TabletopExpert

        return TabletopExpert(env, noise=noise, seed=seed)
    if isinstance(env, PixelsAndProprio):
        return ReacherExpert(env, noise=noise, seed=seed)
    raise SpecError(
        "--env",
        f"{env.spec.id if env.spec else type(env).__name__} has no scripted expert",
        hint=f"collect demonstrations in one of {', '.join(BUILT_IN)}, or record your own",
    )

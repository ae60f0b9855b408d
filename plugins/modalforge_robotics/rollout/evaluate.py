"""A trained policy's closed-loop metrics in an environment: what ``modalforge bench`` ranks
robotics cells by, and the checks ``modalforge rollout`` shares (the environment a policy was
trained in, its action size)."""

from __future__ import annotations

from typing import Any

from modalforge.errors import SpecError

METRIC_PREFIX = "rollout_"


def policy_env_params(trained: Any, env: str) -> dict[str, Any]:  # noqa: ANN401
    """The training demonstrations' environment parameters when ``env`` is where they were
    collected (a policy sees images of the size and kind it was trained on), else ``{}``."""
    demos = (trained.dataset_state.get("demonstrations") or {}) if trained is not None else {}
    return dict(demos.get("env_params") or {}) if demos.get("env") == env else {}


def check_action_dim(env: Any, policy_dim: int, name: str) -> None:  # noqa: ANN401
    """A :class:`SpecError` when ``env`` takes actions of another size than the policy's."""
    shape = getattr(env.action_space, "shape", None) or ()
    if len(shape) != 1 or shape[0] != policy_dim:
        raise SpecError(
            "--env",
            f"{name} takes actions of shape {tuple(shape)}, but the policy was trained on "
            f"{policy_dim}-dimensional actions",
            hint="roll out in the environment the demonstrations came from",
        )


def closed_loop_metrics(
    trained: Any,  # noqa: ANN401 - a TrainedPipeline
    env: str,
    episodes: int = 20,
    *,
    num_envs: int = 1,
    seed: int = 1000,
    env_params: dict[str, Any] | None = None,
    execution: str = "ensemble",
    success_at: str | None = None,
) -> dict[str, float]:
    """``rollout_success`` (with ``rollout_success_low`` / ``_high``, the Wilson 95% interval),
    ``rollout_return`` and ``rollout_length`` of ``episodes`` seeded episodes (seeds ``seed``,
    ``seed + 1``, ...: the same episodes for every policy compared)."""
    from modalforge_robotics.gymenv import make_env
    from modalforge_robotics.rollout.loop import run_episodes, success_rule
    from modalforge_robotics.rollout.policy import TrainedPolicy
    from modalforge_robotics.rollout.stats import success_rate

    params = {**policy_env_params(trained, env), **(env_params or {})}
    policy = TrainedPolicy(trained, execution=execution, seed=seed)
    probe = make_env(env, **params)
    try:
        check_action_dim(probe, policy.action_dim, env)
        rule = success_at or success_rule(probe)
    finally:
        probe.close()
    results = run_episodes(
        lambda: make_env(env, **params),
        policy,
        episodes,
        num_envs=num_envs,
        seed=seed,
        success_at=rule,  # type: ignore[arg-type]
    )
    rate = success_rate(sum(r.success for r in results), len(results))
    n = len(results)
    return {
        f"{METRIC_PREFIX}success": rate.rate,
        f"{METRIC_PREFIX}success_low": rate.low,
        f"{METRIC_PREFIX}success_high": rate.high,
        f"{METRIC_PREFIX}return": sum(r.ret for r in results) / n,
        f"{METRIC_PREFIX}length": sum(r.length for r in results) / n,
    }

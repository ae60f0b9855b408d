"""The closed-loop rollout: seeded episodes over several environments stepped in lockstep, the
policy called once per step on the batch of running environments."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

SuccessAt = Literal["any", "final"]
SUCCESS_RULES: tuple[str, ...] = ("any", "final")


class RolloutPolicy(Protocol):
    """What the loop drives: ``reset(slot)`` when environment ``slot`` starts an episode, and
    ``act(observations, slots)`` → actions ``(len(slots), A)`` for the running ones."""

    def reset(self, slot: int) -> None: ...

    def act(self, observations: Sequence[dict[str, Any]], slots: Sequence[int]) -> np.ndarray: ...


@dataclass
class EpisodeResult:
    """One episode: its index and seed, whether it succeeded (see :func:`run_episodes`), the
    return, the length, its frames when recorded, the largest step reward (LeRobot reports its
    mean over episodes) and the largest ``info["coverage"]`` if the environment gives one."""

    index: int
    seed: int
    success: bool
    ret: float
    length: int
    instruction: str | None = None
    frames: list[np.ndarray] = field(default_factory=list)
    max_reward: float = float("-inf")
    max_coverage: float | None = None  # info["coverage"] where the env reports it (PushT)


def run_episodes(
    make_env: Callable[[], Any],
    policy: RolloutPolicy,
    episodes: int,
    *,
    num_envs: int = 1,
    seed: int = 0,
    record: int = 0,
    max_steps: int | None = None,
    success_at: SuccessAt | None = None,
) -> list[EpisodeResult]:
    """Run ``episodes`` episodes, episode ``i`` reset with seed ``seed + i`` (so results do not
    depend on ``num_envs``), on ``num_envs`` environments from ``make_env``. The first
    ``record`` episodes keep their frames (``env.render()``, else the ``rgb`` observation).
    Episodes end when the environment terminates or truncates, or after ``max_steps``.

    An episode succeeds when ``info["is_success"]`` is true at any step (``success_at="any"``,
    as LeRobot counts: tasks that terminate on success) or on its last step (``"final"``: tasks
    such as Reacher that run to the time limit and must *stay* at the goal). By default the
    environment's ``success_at`` attribute decides, else ``"any"``."""
    if episodes < 1 or num_envs < 1:
        raise ValueError("episodes and num_envs must be at least 1")
    if success_at is not None and success_at not in SUCCESS_RULES:
        raise ValueError(f"success_at must be one of {SUCCESS_RULES}, got {success_at!r}")
    envs = [make_env() for _ in range(min(num_envs, episodes))]
    rule = success_at or success_rule(envs[0])
    if rule not in SUCCESS_RULES:
        for env in envs:
            env.close()
        raise ValueError(f"the environment's success_at must be one of {SUCCESS_RULES}: {rule!r}")
    final = rule == "final"
    results: list[EpisodeResult | None] = [None] * episodes
    running: dict[int, dict[str, Any]] = {}  # slot → state of its current episode
    next_episode = 0

    def start(slot: int) -> None:
        nonlocal next_episode
        index, next_episode = next_episode, next_episode + 1
        obs, info = envs[slot].reset(seed=seed + index)
        policy.reset(slot)
        state = {"index": index, "obs": obs, "ret": 0.0, "length": 0, "success": False}
        state["max_reward"], state["max_coverage"] = float("-inf"), None
        state["instruction"] = obs.get("instruction") if isinstance(obs, dict) else None
        state["frames"] = [_frame(envs[slot], obs)] if index < record else None
        state["success"] = bool(info.get("is_success", False))
        running[slot] = state

    try:
        for slot in range(len(envs)):
            start(slot)
        while running:
            slots = sorted(running)
            actions = np.asarray(policy.act([running[s]["obs"] for s in slots], slots))
            for row, slot in enumerate(slots):
                state = running[slot]
                obs, reward, terminated, truncated, info = envs[slot].step(actions[row])
                state["obs"], state["length"] = obs, state["length"] + 1
                state["ret"] += float(reward)
                state["max_reward"] = max(state["max_reward"], float(reward))
                if "coverage" in info:
                    cover = float(info["coverage"])
                    state["max_coverage"] = max(state["max_coverage"] or 0.0, cover)
                now = bool(info.get("is_success", False))
                state["success"] = now if final else (state["success"] or now)
                if state["frames"] is not None:
                    state["frames"].append(_frame(envs[slot], obs))
                limit = max_steps is not None and state["length"] >= max_steps
                if terminated or truncated or limit:
                    index = state["index"]
                    results[index] = EpisodeResult(
                        index,
                        seed + index,
                        state["success"],
                        state["ret"],
                        state["length"],
                        state["instruction"],
                        state["frames"] or [],
                        state["max_reward"],
                        state["max_coverage"],
                    )
                    del running[slot]
                    if next_episode < episodes:
                        start(slot)
    finally:
        for env in envs:
            env.close()
    return [r for r in results if r is not None]


def success_rule(env: Any) -> str:  # noqa: ANN401 - a gymnasium env
    """The ``success_at`` attribute of ``env`` or a wrapper inside it, else ``"any"``."""
    try:
        return str(env.get_wrapper_attr("success_at"))
    except AttributeError:
        return str(getattr(env, "success_at", "any"))


def _frame(env: Any, obs: Any) -> np.ndarray:  # noqa: ANN401 - a gymnasium env
    frame = env.render() if getattr(env, "render_mode", None) == "rgb_array" else None
    if frame is None and isinstance(obs, dict) and "rgb" in obs:
        frame = obs["rgb"]
    if frame is None:
        raise ValueError("cannot record frames: the environment renders no rgb_array")
    return np.asarray(frame, dtype=np.uint8).copy()

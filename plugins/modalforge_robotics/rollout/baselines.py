"""Reference policies and test-time ablations of the rollout: random actions, the scripted
expert, and instructions swapped between episodes (does the policy follow the language?)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


class RandomPolicy:
    """Uniform actions in the environment's action box, seeded."""

    def __init__(self, action_space: Any, seed: int = 0) -> None:  # noqa: ANN401
        self.low = np.asarray(action_space.low, dtype=np.float32)
        self.high = np.asarray(action_space.high, dtype=np.float32)
        self.rng = np.random.default_rng(seed)

    def reset(self, slot: int) -> None: ...

    def act(self, observations: Sequence[dict[str, Any]], slots: Sequence[int]) -> np.ndarray:
        return self.rng.uniform(self.low, self.high, (len(slots), *self.low.shape)).astype(
            np.float32
        )


class ExpertPolicy:
    """Each environment slot's scripted expert (privileged state), from ``make_expert(env)``."""

    def __init__(self, envs: list[Any], make_expert: Callable[[Any], Any]) -> None:  # noqa: ANN401
        self.envs, self.make_expert = envs, make_expert
        self.experts: dict[int, Any] = {}

    def reset(self, slot: int) -> None:
        self.experts[slot] = self.make_expert(self.envs[slot])

    def act(self, observations: Sequence[dict[str, Any]], slots: Sequence[int]) -> np.ndarray:
        return np.stack(
            [self.experts[s](o) for s, o in zip(slots, observations, strict=True)]
        ).astype(np.float32)


def shuffled_instructions(env: Any, pool: Sequence[str]) -> Any:  # noqa: ANN401
    """``env`` whose observations carry another episode's instruction: at each reset, one of
    ``pool`` that differs from the true instruction, chosen by the reset's seed. The task (and
    its success) stay the true one's, so success measures how much the policy follows words."""
    import gymnasium as gym

    class ShuffledInstructions(gym.Wrapper):
        def reset(self, *, seed: int | None = None, options: dict | None = None):  # noqa: ANN202
            obs, info = self.env.reset(seed=seed, options=options)
            others = sorted({p for p in pool if p != obs["instruction"]})
            if not others:
                raise ValueError("instruction shuffling needs at least two distinct instructions")
            rng = np.random.default_rng(None if seed is None else seed + 7919)
            self.shown = others[int(rng.integers(len(others)))]
            return {**obs, "instruction": self.shown}, info

        def step(self, action: Any):  # noqa: ANN202, ANN401
            obs, reward, terminated, truncated, info = self.env.step(action)
            return {**obs, "instruction": self.shown}, reward, terminated, truncated, info

    return ShuffledInstructions(env)

"""Closed-loop evaluation: the rollout loop and success rates with intervals."""

from modalforge_robotics.rollout.loop import (
    EpisodeResult,
    RolloutPolicy,
    run_episodes,
    success_rule,
)
from modalforge_robotics.rollout.stats import SuccessRate, success_rate

__all__ = [
    "EpisodeResult",
    "RolloutPolicy",
    "SuccessRate",
    "run_episodes",
    "success_rate",
    "success_rule",
]

"""Success rates of closed-loop rollouts with a confidence interval, as the field reports them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

IntervalMethod = Literal["wilson", "beta"]


@dataclass(frozen=True)
class SuccessRate:
    """``successes`` of ``episodes`` and a two-sided interval at ``confidence``."""

    successes: int
    episodes: int
    low: float
    high: float
    method: IntervalMethod
    confidence: float

    @property
    def rate(self) -> float:
        return self.successes / self.episodes


def success_rate(
    successes: int, episodes: int, method: IntervalMethod = "wilson", confidence: float = 0.95
) -> SuccessRate:
    """The success rate with a Wilson score interval, or the equal-tailed interval of the Beta
    posterior under a uniform prior, ``Beta(1 + s, 1 + n − s)`` (``method: beta``).

    Both stay inside ``[0, 1]`` and are informative at 0 or ``n`` successes, where the normal
    approximation collapses to a point.
    """
    if episodes < 1:
        raise ValueError("a success rate needs at least one episode")
    if not 0 <= successes <= episodes:
        raise ValueError(f"successes must be in [0, {episodes}], got {successes}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    tail = (1 - confidence) / 2
    if method == "wilson":
        z = NormalDist().inv_cdf(1 - tail)
        p, n = successes / episodes, episodes
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        low, high = max(0.0, centre - half), min(1.0, centre + half)
        # exact at the ends (the closed form is 0 and 1 there; rounding leaves ~1e-17)
        low = 0.0 if successes == 0 else low
        high = 1.0 if successes == episodes else high
    elif method == "beta":
        from scipy.stats import beta

        a, b = 1 + successes, 1 + episodes - successes
        low, high = float(beta.ppf(tail, a, b)), float(beta.ppf(1 - tail, a, b))
    else:
        raise ValueError(f"method must be wilson or beta, got {method!r}")
    return SuccessRate(successes, episodes, low, high, method, confidence)

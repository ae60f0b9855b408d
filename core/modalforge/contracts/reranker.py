"""Reranker contract: score a generator's candidates against their prompts, keep the best.

DALL·E draws many samples per prompt and keeps those CLIP scores highest; the reranker is its own
component so any scorer (a CLIP trained with modalforge, a judge, a human-preference model) can be
swapped in without touching the generator.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Reranked:
    """The kept candidates per prompt, best first, with their scores and original positions."""

    samples: Tensor  # (P, keep, ...)
    scores: Tensor  # (P, keep)
    indices: Tensor  # (P, keep) positions among the N candidates
    all_scores: Tensor  # (P, N) every candidate's score


class Reranker(ABC):
    """Scores candidates ``(P, N, ...)`` for P prompts; higher is better."""

    def check(self, sample_shape: Sequence[int]) -> None:  # noqa: B027 - optional hook
        """Raise a :class:`~modalforge.errors.ModalforgeError` if samples of this shape (one
        sample, e.g. ``(C, H, W)``) cannot be scored; called before any sampling."""

    @abstractmethod
    def score(self, samples: Tensor, prompts: Sequence[str]) -> Tensor:
        """Scores ``(P, N)`` of candidates ``samples (P, N, ...)`` for their ``prompts``."""

    @torch.no_grad()
    def rerank(self, samples: Tensor, prompts: Sequence[str], keep: int) -> Reranked:
        """The ``keep`` best of each prompt's N candidates (ties: the earlier candidate)."""
        if samples.shape[0] != len(prompts):
            raise ValueError(f"{samples.shape[0]} candidate sets for {len(prompts)} prompts")
        n = samples.shape[1]
        if not 1 <= keep <= n:
            raise ValueError(f"keep must be between 1 and the {n} candidates, got {keep}")
        scores = self.score(samples, prompts).float().cpu()
        order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :keep]
        picked = torch.stack([samples[p].cpu()[order[p]] for p in range(len(prompts))])
        return Reranked(picked, scores.gather(1, order), order, scores)

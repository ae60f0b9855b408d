"""ACT-style temporal ensembling of action chunks at run time (Zhao et al., 2023, "Learning
Fine-Grained Bimanual Manipulation with Low-Cost Hardware", Sec. 3.4).

The policy predicts a chunk of the next ``k`` actions at every step; the action executed at step
``t`` is the weighted average of every chunk's prediction for ``t`` (the chunks of steps
``t - k + 1 .. t`` since the episode's start), with weights ``exp(-m * i)`` where ``i = 0`` is the
oldest prediction, normalised to sum to one (as in ACT's reference code). ``m = 0`` averages
uniformly; a large ``m`` executes the oldest prediction; ``k = 1`` executes each new action.
"""

from __future__ import annotations

import torch
from torch import Tensor


class TemporalEnsembler:
    """Keeps the last ``k`` chunks of each of ``B`` parallel environments.

    ``update(chunk)`` with a new chunk ``(B, k, A)`` (or ``(k, A)`` for one environment) returns
    the action ``(B, A)`` (``(A,)``) to execute now. ``reset()`` at the start of every episode;
    ``reset(done)`` with a bool ``(B,)`` mask clears only those environments (parallel
    environments whose episodes end at different steps).
    """

    def __init__(self, m: float = 0.01) -> None:
        if not m >= 0:
            raise ValueError(f"temporal ensembling m must be non-negative, got {m}")
        self.m = float(m)
        self.reset()

    def reset(self, done: Tensor | None = None) -> None:
        """Forget every environment's history, or only that of the environments in ``done``."""
        if done is None or self._chunks is None:
            self._chunks: Tensor | None = None  # (B, k, k, A): slot j = chunk of j steps ago
            self._valid: Tensor | None = None  # (B, k): slot j holds a chunk of this episode
            return
        done = torch.as_tensor(done, dtype=torch.bool, device=self._valid.device).reshape(-1)
        if done.shape[0] != self._valid.shape[0]:
            raise ValueError(
                f"reset mask has {done.shape[0]} entries, but {self._valid.shape[0]} environments "
                "are ensembled"
            )
        self._valid[done] = False

    def update(self, chunk: Tensor) -> Tensor:
        """Add the chunk predicted now; the ensembled action for the current step."""
        single = chunk.dim() == 2
        if single:
            chunk = chunk.unsqueeze(0)
        if chunk.dim() != 3:
            raise ValueError(f"expected a chunk (B, k, A) or (k, A), got {tuple(chunk.shape)}")
        b, k, _ = chunk.shape
        if self._chunks is None:
            self._chunks = chunk.new_zeros((b, k, *chunk.shape[1:]))
            self._valid = torch.zeros(b, k, dtype=torch.bool, device=chunk.device)
        elif self._chunks.shape[0] != b or self._chunks.shape[2:] != chunk.shape[1:]:
            raise ValueError(
                f"chunk {tuple(chunk.shape)} does not match the ensembled ones "
                f"{(self._chunks.shape[0], *self._chunks.shape[2:])}; call reset() between "
                "episodes or when the number of environments changes"
            )
        assert self._valid is not None
        self._chunks = torch.cat([chunk.unsqueeze(1), self._chunks[:, :-1]], dim=1)
        self._valid = torch.cat([self._valid.new_ones(b, 1), self._valid[:, :-1]], dim=1)
        steps = torch.arange(k, device=chunk.device)
        # slot j's prediction for now is its chunk's step j
        now = self._chunks[:, steps, steps]  # (B, k, A)
        valid = self._valid.to(now.dtype)
        count = valid.sum(dim=1, keepdim=True)  # valid slots are 0 .. count - 1
        age_rank = count - 1 - steps.to(now.dtype)  # i = 0 for the oldest valid slot
        weights = torch.exp(-self.m * age_rank.clamp_min(0)) * valid
        weights = weights / weights.sum(dim=1, keepdim=True)
        action = (weights.unsqueeze(-1) * now).sum(dim=1)
        return action[0] if single else action

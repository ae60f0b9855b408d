"""Action normalisation to [-1, 1] per dimension with the training episodes' min and max.

The statistics are plain JSON (:meth:`ActionNormalizer.state_dict`), so a checkpoint can carry
them and a rollout un-normalises the policy's actions without the data set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch

from modalforge.errors import CheckpointError, DataError

NormalizeMode = Literal["minmax", "none"]


class ActionNormalizer:
    """``minmax``: ``a → 2 (a - min) / (max - min) - 1`` per dimension (LeRobot's MIN_MAX); a
    dimension that never changes in training is only centred (``a - min``), so it maps to 0
    instead of dividing by zero. ``none``: identity. Works on numpy arrays and tensors of any
    shape ending in the action dimension (``(A,)``, ``(k, A)``, ``(B, k, A)``)."""

    def __init__(
        self, mode: NormalizeMode, low: Sequence[float] = (), high: Sequence[float] = ()
    ) -> None:
        if mode not in ("minmax", "none"):
            raise DataError(f"action normalisation {mode!r} is unknown", hint="use minmax or none")
        self.mode = mode
        self.low = np.asarray(low, dtype=np.float64).reshape(-1)
        self.high = np.asarray(high, dtype=np.float64).reshape(-1)
        if self.low.shape != self.high.shape:
            raise DataError(f"action min has {self.low.size} values but max has {self.high.size}")
        span = self.high - self.low
        constant = span < 1e-8
        self._scale = np.where(constant, 1.0, 2.0 / np.where(constant, 1.0, span))
        self._offset = np.where(constant, self.low, self.low + span / 2)

    @classmethod
    def fit(cls, actions: Sequence[np.ndarray], mode: NormalizeMode) -> ActionNormalizer:
        """Statistics of ``actions`` (the training episodes' (T, A) arrays)."""
        stacked = np.concatenate([np.asarray(a, dtype=np.float64) for a in actions])
        return cls(mode, stacked.min(0), stacked.max(0))

    @property
    def dim(self) -> int:
        return int(self.low.size)

    def normalize(self, actions: Any) -> Any:  # noqa: ANN401 - array or tensor
        return self._apply(actions, forward=True)

    def unnormalize(self, actions: Any) -> Any:  # noqa: ANN401 - array or tensor
        return self._apply(actions, forward=False)

    def _apply(self, actions: Any, *, forward: bool) -> Any:  # noqa: ANN401
        if self.mode == "none":
            return actions
        if actions.shape[-1] != self.dim:
            raise DataError(
                f"actions have {actions.shape[-1]} dimensions, but the normaliser was fitted on "
                f"{self.dim}",
                hint="the environment's action space must match the data set's",
            )
        scale, offset = self._scale, self._offset
        if isinstance(actions, torch.Tensor):
            scale = torch.as_tensor(scale, dtype=actions.dtype, device=actions.device)
            offset = torch.as_tensor(offset, dtype=actions.dtype, device=actions.device)
            return (actions - offset) * scale if forward else actions / scale + offset
        a = np.asarray(actions)
        out = (a - offset) * scale if forward else a / scale + offset
        return out.astype(a.dtype if np.issubdtype(a.dtype, np.floating) else np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "min": self.low.tolist(), "max": self.high.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.__init__(**_args(state))  # type: ignore[misc]

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> ActionNormalizer:
        return cls(**_args(state))


def _args(state: dict[str, Any]) -> dict[str, Any]:
    try:
        return {"mode": state["mode"], "low": state["min"], "high": state["max"]}
    except (KeyError, TypeError):
        raise CheckpointError(
            "the stored action normalisation lacks 'mode', 'min' or 'max'",
            hint="use a checkpoint written by a robotics training run",
        ) from None

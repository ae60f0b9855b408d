"""``mse_action``: an MLP regressing the action chunk directly (the BC baseline, ACT's L1 head),
trained with ``action_mse`` (squared, absolute or smooth-L1 error)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from modalforge.contracts import LossOutput, Target
from modalforge.errors import SpecError
from modalforge_robotics.heads.base import ActionHead, ActionLoss, action_mlp


class MLPActionHead(ActionHead):
    """``(B, in_dim)`` → MLP (``hidden_dims``) → ``(B, k, A)``, squashed by ``tanh`` if asked.

    Output ``action``; :meth:`act` returns it clamped to ``[-1, 1]`` (a point estimate: ``sample``
    changes nothing).
    """

    output_key: ClassVar[str] = "action"
    name: ClassVar[str] = "mse_action"

    def __init__(
        self,
        in_dim: int,
        target: Target,
        hidden_dims: list[int] = [256],  # noqa: B006 - read-only default, copied below
        dropout: float = 0.0,
        tanh: bool = False,
    ) -> None:
        super().__init__(in_dim, target)
        self.tanh = tanh
        self.net = action_mlp(in_dim, list(hidden_dims), self.horizon * self.action_dim, dropout)

    def forward(self, x: Tensor) -> Tensor:
        out = self.net(x).reshape(x.shape[0], self.horizon, self.action_dim)
        return torch.tanh(out) if self.tanh else out

    def act(
        self,
        outputs: Mapping[str, Tensor],
        sample: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        return self._own(outputs).clamp(-1.0, 1.0)


class ActionMSELoss(ActionLoss):
    """Per-element ``mse``, ``l1`` or ``smooth_l1`` error of ``action`` against the target chunk.

    ``smooth_l1`` is Huber with ``beta``; averaged over the action dimensions and unpadded steps.
    """

    name: ClassVar[str] = "action_mse"
    head: ClassVar[str] = "mse_action"

    def __init__(
        self,
        target: Target | None = None,
        kind: Literal["mse", "l1", "smooth_l1"] = "mse",
        beta: float = 1.0,
        output_key: str = "action",
    ) -> None:
        super().__init__(target, output_key)
        if kind not in ("mse", "l1", "smooth_l1"):
            raise SpecError(
                "loss.params.kind", f"must be mse, l1 or smooth_l1, got {kind!r}", hint="e.g. l1"
            )
        if beta <= 0:
            raise SpecError("loss.params.beta", f"must be positive, got {beta}")
        self.kind = kind
        self.beta = beta

    def forward(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> LossOutput:
        pred, y = self.inputs(outputs, batch)
        self.check_chunks(tuple(pred.shape), y)
        pred = pred.float()
        if self.kind == "mse":
            err = F.mse_loss(pred, y, reduction="none")
        elif self.kind == "l1":
            err = F.l1_loss(pred, y, reduction="none")
        else:
            err = F.smooth_l1_loss(pred, y, reduction="none", beta=self.beta)
        loss = self.reduce(err.mean(dim=-1), batch)
        return LossOutput(loss, {self.name: loss})

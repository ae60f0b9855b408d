"""``binned_action``: each action dimension of each chunk step classified into ``bins`` uniform
bins over ``[-1, 1]`` (RT-1 / OpenVLA-style discretisation), trained with ``action_bins_ce``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from modalforge.contracts import LossOutput, Target
from modalforge.errors import SpecError
from modalforge_robotics.heads.base import ActionHead, ActionLoss, action_mlp, draw_categorical


def bin_index(values: Tensor, bins: int) -> Tensor:
    """The bin (``long``, ``0 .. bins - 1``) of each value; bins of width ``2 / bins`` tile
    ``[-1, 1]``, values outside are put in the end bins."""
    index = torch.floor((values.float() + 1.0) * (bins / 2.0)).long()
    return index.clamp(0, bins - 1)


def bin_centres(bins: int, device: torch.device | None = None) -> Tensor:
    """The ``bins`` bin centres ``-1 + (i + 1/2) * 2 / bins``."""
    width = 2.0 / bins
    return -1.0 + width * (torch.arange(bins, device=device, dtype=torch.float32) + 0.5)


class BinnedActionHead(ActionHead):
    """``(B, in_dim)`` → MLP → logits ``(B, k, A, bins)`` (output ``action_logits``).

    :meth:`act` returns the centre of each dimension's most likely bin, or with ``sample=True``
    of a bin drawn from the softmax.
    """

    output_key: ClassVar[str] = "action_logits"
    name: ClassVar[str] = "binned_action"

    def __init__(
        self,
        in_dim: int,
        target: Target,
        bins: int = 256,
        hidden_dims: list[int] = [256],  # noqa: B006 - read-only default, copied below
        dropout: float = 0.0,
    ) -> None:
        super().__init__(in_dim, target)
        if bins < 2:
            raise SpecError(
                "model.head.params.bins", f"must be at least 2, got {bins}", hint="e.g. 256"
            )
        self.bins = bins
        out = self.horizon * self.action_dim * bins
        self.net = action_mlp(in_dim, list(hidden_dims), out, dropout)
        self.register_buffer("centres", bin_centres(bins), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).reshape(x.shape[0], self.horizon, self.action_dim, self.bins)

    def act(
        self,
        outputs: Mapping[str, Tensor],
        sample: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        logits = self._own(outputs)
        if sample:
            probs = logits.float().softmax(dim=-1).reshape(-1, self.bins)
            index = draw_categorical(probs, generator).reshape(logits.shape[:-1])
        else:
            index = logits.argmax(dim=-1)
        return self.centres.to(logits.device)[index]


class ActionBinsCELoss(ActionLoss):
    """Cross-entropy of ``binned_action``'s logits to the bin of each target value.

    With optional ``label_smoothing``; averaged over the action dimensions and unpadded steps.
    """

    name: ClassVar[str] = "action_bins_ce"
    head: ClassVar[str] = "binned_action"

    def __init__(
        self,
        target: Target | None = None,
        label_smoothing: float = 0.0,
        output_key: str = "action_logits",
    ) -> None:
        super().__init__(target, output_key)
        if not 0.0 <= label_smoothing < 1.0:
            raise SpecError(
                "loss.params.label_smoothing", f"must be in [0, 1), got {label_smoothing}"
            )
        self.label_smoothing = label_smoothing

    def forward(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> LossOutput:
        logits, y = self.inputs(outputs, batch)
        self.check_chunks(tuple(logits.shape[:-1]), y)
        bins = logits.shape[-1]
        ce = F.cross_entropy(
            logits.float().reshape(-1, bins),
            bin_index(y, bins).reshape(-1),
            label_smoothing=self.label_smoothing,
            reduction="none",
        )
        loss = self.reduce(ce.reshape(y.shape).mean(dim=-1), batch)
        return LossOutput(loss, {self.name: loss})

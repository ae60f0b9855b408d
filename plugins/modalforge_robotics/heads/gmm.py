"""``gmm_action``: a mixture of ``modes`` diagonal Gaussians per chunk step (robomimic's GMM
policy), trained with ``action_gmm_nll``, the negative log-likelihood of the target actions.

As in robomimic's ``GMMActorNetwork`` (without its tanh-wrapped distribution): means are squashed
by ``tanh`` into the action range, standard deviations are ``softplus(raw) + min_std``, and the
mixture weights are a softmax over per-step logits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from modalforge.contracts import LossOutput, Target
from modalforge.errors import DataError, SpecError
from modalforge_robotics.heads.base import (
    ActionHead,
    ActionLoss,
    action_mlp,
    draw_categorical,
    draw_normal,
)


def split_gmm(params: Tensor, action_dim: int) -> tuple[Tensor, Tensor, Tensor]:
    """``(means, stds, logits)`` from the head's packed output ``(B, k, modes, 2A + 1)``:
    means and stds ``(B, k, modes, A)``, mixture logits ``(B, k, modes)``."""
    if params.shape[-1] != 2 * action_dim + 1:
        raise DataError(
            f"a GMM output has {params.shape[-1]} values per mode, but {action_dim}-D actions "
            f"need {2 * action_dim + 1} (means, stds, logit)",
            hint="pair action_gmm_nll with the gmm_action head and the data set it was sized for",
        )
    return params[..., :action_dim], params[..., action_dim:-1], params[..., -1]


def gmm_log_prob(params: Tensor, actions: Tensor) -> Tensor:
    """Log-density ``(B, k)`` of ``actions`` ``(B, k, A)`` under the packed mixture ``params``."""
    means, stds, logits = split_gmm(params, actions.shape[-1])
    z = (actions.unsqueeze(-2) - means) / stds
    per_mode = (-0.5 * z.square() - stds.log() - 0.5 * math.log(2 * math.pi)).sum(dim=-1)
    return torch.logsumexp(F.log_softmax(logits, dim=-1) + per_mode, dim=-1)


class GMMActionHead(ActionHead):
    """``(B, in_dim)`` → MLP → per chunk step, ``modes`` Gaussians over the ``A``-D action.

    Output ``action_gmm``: float ``(B, k, modes, 2A + 1)``, per mode the means (``tanh``), the
    stds (``softplus + min_std``) and the mixture logit (see :func:`split_gmm`). :meth:`act`
    returns the mean of each step's most likely mode, or with ``sample=True`` draws a mode by its
    weight, then an action from its Gaussian (clamped to ``[-1, 1]``).
    """

    output_key: ClassVar[str] = "action_gmm"
    name: ClassVar[str] = "gmm_action"

    def __init__(
        self,
        in_dim: int,
        target: Target,
        modes: int = 5,
        hidden_dims: list[int] = [256],  # noqa: B006 - read-only default, copied below
        min_std: float = 1e-4,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(in_dim, target)
        if modes < 1:
            raise SpecError("model.head.params.modes", f"must be at least 1, got {modes}")
        if min_std <= 0:
            raise SpecError(
                "model.head.params.min_std",
                f"must be positive, got {min_std}",
                hint="e.g. 1e-4 (robomimic's default) keeps the likelihood finite",
            )
        self.modes = modes
        self.min_std = min_std
        out = self.horizon * modes * (2 * self.action_dim + 1)
        self.net = action_mlp(in_dim, list(hidden_dims), out, dropout)

    def forward(self, x: Tensor) -> Tensor:
        a = self.action_dim
        out = self.net(x).reshape(x.shape[0], self.horizon, self.modes, 2 * a + 1)
        means, raw_std, logits = out[..., :a], out[..., a:-1], out[..., -1:]
        stds = F.softplus(raw_std) + self.min_std
        return torch.cat([torch.tanh(means), stds, logits], dim=-1)

    def act(
        self,
        outputs: Mapping[str, Tensor],
        sample: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        means, stds, logits = split_gmm(self._own(outputs), self.action_dim)
        if sample:
            probs = logits.float().softmax(dim=-1).reshape(-1, self.modes)
            mode = draw_categorical(probs, generator).reshape(logits.shape[:-1])
        else:
            mode = logits.argmax(dim=-1)
        index = mode[..., None, None].expand(*mode.shape, 1, self.action_dim)
        mean = means.gather(-2, index).squeeze(-2)
        if not sample:
            return mean.clamp(-1.0, 1.0)
        std = stds.gather(-2, index).squeeze(-2)
        return (mean + std * draw_normal(mean, generator)).clamp(-1.0, 1.0)


class ActionGMMNLLLoss(ActionLoss):
    """Negative log-likelihood of the target chunk under ``gmm_action``'s mixtures.

    Averaged over the unpadded steps (each step's density is over its whole ``A``-D action).
    """

    name: ClassVar[str] = "action_gmm_nll"
    head: ClassVar[str] = "gmm_action"

    def __init__(self, target: Target | None = None, output_key: str = "action_gmm") -> None:
        super().__init__(target, output_key)

    def forward(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> LossOutput:
        params, y = self.inputs(outputs, batch)
        self.check_chunks(tuple(params.shape[:2]) + (y.shape[-1],), y)
        loss = self.reduce(-gmm_log_prob(params.float(), y), batch)
        return LossOutput(loss, {self.name: loss})

"""Heads sized from the representation (``in_dim``) and the data set's target."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from modalforge.contracts import Head, Target, TargetKind
from modalforge.errors import SpecError
from modalforge_heads.mlp import head_mlp


def _check_kind(head: str, target: Target, kinds: tuple[TargetKind, ...], other: str) -> None:
    if target.kind not in kinds:
        raise SpecError(
            "model.head",
            f"the {head} head predicts {' or '.join(str(k) for k in kinds)} targets, but the data "
            f"set's target is {target.kind}",
            hint=f"use `head: {other}` for a {target.kind} target",
        )


class _TargetHead(Head):
    """An MLP from ``in_dim`` to the target's outputs; subclasses say which target kinds fit."""

    kinds: tuple[TargetKind, ...] = ()
    other: str = ""  # the head to suggest for other kinds

    def __init__(
        self,
        in_dim: int,
        target: Target,
        hidden_dims: list[int] = [],  # noqa: B006 - read-only default, copied below
        dropout: float = 0.0,
    ) -> None:
        super().__init__(in_dim)
        _check_kind(self.name, target, self.kinds, self.other)
        self.target = target
        self.net = head_mlp(in_dim, list(hidden_dims), target.num_outputs, dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ClassificationHead(_TargetHead):
    """Class logits ``(B, classes)`` for multiclass (softmax) or multilabel (sigmoid) targets."""

    output_key = "logits"
    name = "classification"
    kinds = (TargetKind.MULTICLASS, TargetKind.MULTILABEL)
    other = "regression"


class RegressionHead(_TargetHead):
    """Real-valued predictions ``(B, num_outputs)``, stored under ``prediction``."""

    output_key = "prediction"
    name = "regression"
    kinds = (TargetKind.REGRESSION,)
    other = "classification"


class ProjectionHead(Head):
    """An MLP projection to an ``out_dim`` embedding (for retrieval, contrastive or probing)."""

    output_key = "embedding"

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 128,
        hidden_dims: list[int] = [],  # noqa: B006 - read-only default, copied below
        dropout: float = 0.0,
        normalize: bool = False,
    ) -> None:
        super().__init__(in_dim)
        self.out_dim = out_dim
        self.normalize = normalize
        self.net = head_mlp(in_dim, list(hidden_dims), out_dim, dropout)

    def forward(self, x: Tensor) -> Tensor:
        out = self.net(x)
        return F.normalize(out, dim=-1) if self.normalize else out

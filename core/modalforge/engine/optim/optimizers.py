"""Built-in optimizers: AdamW (the default), Adam and SGD with momentum.

Each builds over the parameter groups of :func:`~modalforge.engine.optim.groups.grouped_params`,
which already carry every group's ``lr`` and ``weight_decay``.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import torch
from pydantic import Field

from modalforge.contracts.optim import Optimizer
from modalforge.engine.config import TrainConfig

Betas = tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]]


def _on_cuda(groups: list[dict], device: torch.device) -> bool:
    return device.type == "cuda" and all(p.is_cuda for g in groups for p in g["params"])


class _AdamLike(Optimizer):
    train_fields: ClassVar[frozenset[str]] = frozenset({"betas", "eps"})
    torch_class: ClassVar[type[torch.optim.Optimizer]]

    def __init__(
        self,
        betas: Betas | None = None,
        eps: Annotated[float, Field(gt=0)] | None = None,
        amsgrad: bool = False,
    ) -> None:
        self.betas = None if betas is None else (float(betas[0]), float(betas[1]))
        self.eps = eps
        self.amsgrad = amsgrad

    def build(
        self, param_groups: list[dict], *, lr: float, train: TrainConfig, device: torch.device
    ) -> torch.optim.Optimizer:
        kwargs = {"fused": True} if _on_cuda(param_groups, device) else {}
        return self.torch_class(
            param_groups,
            lr=lr,
            betas=self.betas if self.betas is not None else tuple(train.betas),
            eps=self.eps if self.eps is not None else train.eps,
            amsgrad=self.amsgrad,
            **kwargs,
        )


class AdamW(_AdamLike):
    """AdamW with decoupled weight decay (``train.weight_decay``, on weights only); the fused
    kernel on CUDA. ``betas`` / ``eps``: default ``train.betas`` / ``train.eps``."""

    torch_class = torch.optim.AdamW


class Adam(_AdamLike):
    """Adam; ``train.weight_decay`` is its L2 penalty (on weights only), so it is often set to 0.
    ``betas`` / ``eps``: default ``train.betas`` / ``train.eps``."""

    torch_class = torch.optim.Adam


class SGD(Optimizer):
    """SGD with momentum (``torch.optim.SGD``); ``train.weight_decay`` is its L2 penalty (on
    weights only). Nesterov momentum needs ``momentum > 0`` and ``dampening = 0``."""

    def __init__(
        self,
        momentum: Annotated[float, Field(ge=0)] = 0.9,
        dampening: Annotated[float, Field(ge=0, le=1)] = 0.0,
        nesterov: bool = False,
    ) -> None:
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov needs momentum > 0 and dampening = 0")
        self.momentum = float(momentum)
        self.dampening = float(dampening)
        self.nesterov = nesterov

    def build(
        self, param_groups: list[dict], *, lr: float, train: TrainConfig, device: torch.device
    ) -> torch.optim.Optimizer:
        return torch.optim.SGD(
            param_groups,
            lr=lr,
            momentum=self.momentum,
            dampening=self.dampening,
            nesterov=self.nesterov,
        )

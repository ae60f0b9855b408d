"""Optimizer and learning-rate schedule contracts: registered recipes the engine builds from.

A registered optimizer (``train.optimizer``) or schedule (``train.scheduler``) is a small object
whose typed constructor parameters are its spec schema, as for every component. The engine owns
what is shared by every choice: the peak learning rate (``train.lr``), weight decay
(``train.weight_decay``, never on biases, norms and temperatures), per-component parameter groups
(``train.param_groups``) and the warm-up length (``train.warmup_steps``). It hands them to
:meth:`Optimizer.build` and :meth:`Scheduler.factor`.

``train_fields`` names the other ``train.*`` fields a component reads (``betas`` and ``eps`` for
Adam-like optimizers, ``min_lr_ratio`` for decaying schedules): setting one of those fields with a
choice that does not read it is a spec error naming the field, never silently ignored.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

import torch

if TYPE_CHECKING:
    from modalforge.engine.config import TrainConfig

# The train.* fields that only some optimizers / schedules read (checked against train_fields).
OPTIMIZER_FIELDS: tuple[str, ...] = ("betas", "eps")
SCHEDULER_FIELDS: tuple[str, ...] = ("warmup_steps", "min_lr_ratio")


class Optimizer(ABC):
    """Builds a ``torch.optim.Optimizer`` over the parameter groups the engine prepared.

    Each group dict has ``params``, ``lr`` (``train.lr`` times the group's multiplier, or its own
    rate) and ``weight_decay`` (0 for biases, norms and temperatures); keep those keys as they are.
    """

    train_fields: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def build(
        self,
        param_groups: list[dict],
        *,
        lr: float,
        train: TrainConfig,
        device: torch.device,
    ) -> torch.optim.Optimizer:
        """The optimizer over ``param_groups``; ``lr`` is the default rate (``train.lr``)."""


class Scheduler(ABC):
    """A learning-rate multiplier per optimizer step, as a closed form.

    The engine wraps it in one ``LambdaLR`` per optimizer, so it scales every parameter group's own
    rate (a text tower at a tenth of the fusion's rate stays at a tenth throughout).
    """

    train_fields: ClassVar[frozenset[str]] = frozenset({"warmup_steps"})

    @abstractmethod
    def factor(self, step: int, total_steps: int, train: TrainConfig) -> float:
        """Multiplier of the base rate for optimizer step ``step`` (0-based) of ``total_steps``."""

    def build(
        self, optimizer: torch.optim.Optimizer, total_steps: int, train: TrainConfig
    ) -> torch.optim.lr_scheduler.LambdaLR:
        """A ``LambdaLR`` applying :meth:`factor` to every param group of ``optimizer``."""

        def lr_lambda(step: int) -> float:  # a closure: its state never enters a checkpoint
            return self.factor(step, total_steps, train)

        return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)

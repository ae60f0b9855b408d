"""The run's optimizers and learning-rate schedules, from the spec's ``train.optimizer`` and
``train.scheduler`` (AdamW with decay on weights only, and linear warm-up + cosine, by default).

The building blocks live in :mod:`modalforge.engine.optim`; the names imported here stay for
existing callers (generators use :func:`param_groups`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import torch
from torch import nn

from modalforge.contracts import CustomTrainStep
from modalforge.contracts.optim import Optimizer, Scheduler
from modalforge.engine.config import TrainConfig
from modalforge.engine.optim import (
    NO_DECAY_NAMES,
    AdamW,
    WarmupCosine,
    grouped_params,
    no_decay,
    param_groups,
    warmup_cosine,
)
from modalforge.engine.optim.checks import custom_step_errors
from modalforge.errors import PluginError, SpecError

__all__ = [
    "NO_DECAY_NAMES",
    "build_adamw",
    "build_optimizers",
    "build_scheduler",
    "build_schedulers",
    "logged_rates",
    "no_decay",
    "param_groups",
    "warmup_cosine",
]


def build_adamw(
    named_params: Iterable[tuple[str, nn.Parameter]], cfg: TrainConfig, device: torch.device
) -> torch.optim.Optimizer:
    """AdamW over ``named_params`` with :func:`param_groups`; the fused kernel on CUDA."""
    groups = param_groups(named_params, cfg.weight_decay)
    if not groups:
        raise ValueError("no trainable parameters")
    return AdamW().build(groups, lr=cfg.lr, train=cfg, device=device)


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    cfg: TrainConfig,
    total_steps: int,
    scheduler: Scheduler | None = None,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` applying ``scheduler``'s factor (default :func:`warmup_cosine`) to every
    param group's own base rate."""
    return (scheduler or WarmupCosine()).build(optimizer, total_steps, cfg)


def build_optimizers(
    model: nn.Module,
    loss: nn.Module | None,
    cfg: TrainConfig,
    device: torch.device,
    optimizer: Optimizer | None = None,
) -> dict[str, torch.optim.Optimizer]:
    """``{"model": optimizer}`` over the model's and the loss's parameters (``loss.<name>``) in
    the groups of ``train.param_groups``, or the named optimizers of a model that implements
    :class:`CustomTrainStep` (``optimizer`` must then be the default)."""
    if isinstance(model, CustomTrainStep):
        errors = custom_step_errors(cfg, type(model).__name__)
        if errors:
            raise errors[0]
        opts = model.configure_optimizers(cfg.lr, cfg.weight_decay)
        if (
            not isinstance(opts, Mapping)
            or not opts
            or not all(isinstance(o, torch.optim.Optimizer) for o in opts.values())
        ):
            raise PluginError(
                f"{type(model).__name__}.configure_optimizers must return a non-empty dict of "
                "name → torch.optim.Optimizer",
                hint="fix the plugin that provides this model",
            )
        return dict(opts)
    groups = grouped_params(model, loss, cfg)
    if not groups:
        raise SpecError(
            "model", "the model has no trainable parameters", hint="unfreeze a component"
        )
    opt = (optimizer or AdamW()).build(groups, lr=cfg.lr, train=cfg, device=device)
    if not isinstance(opt, torch.optim.Optimizer):
        raise PluginError(
            f"{type(optimizer).__name__}.build returned a {type(opt).__name__}, not a "
            "torch.optim.Optimizer",
            hint="fix the plugin that provides this optimizer",
        )
    return {"model": opt}


def build_schedulers(
    optimizers: Mapping[str, torch.optim.Optimizer],
    cfg: TrainConfig,
    total_steps: int,
    scheduler: Scheduler | None = None,
) -> dict[str, torch.optim.lr_scheduler.LambdaLR]:
    """One schedule per optimizer (each of a generator's optimizers too)."""
    return {n: build_scheduler(o, cfg, total_steps, scheduler) for n, o in optimizers.items()}


def logged_rates(
    optimizers: Mapping[str, torch.optim.Optimizer],
    schedulers: Mapping[str, torch.optim.lr_scheduler.LambdaLR],
    cfg: TrainConfig,
    current: Callable[[str], float],
) -> tuple[float, dict[str, float]]:
    """``(lr, extra)`` for a train log line: the first optimizer's rate (``current(name)``), each
    optimizer's as ``lr_<name>`` when there are several, and with ``train.param_groups`` the base
    rate ``train.lr × schedule`` plus each group's as ``lr_<prefix>``."""
    lrs = {name: current(name) for name in optimizers}
    extra = {f"lr_{n}": v for n, v in lrs.items()} if len(lrs) > 1 else {}
    lr = next(iter(lrs.values()))
    if cfg.param_groups and set(optimizers) == {"model"}:
        sched = schedulers["model"]
        lr = cfg.lr * sched.lr_lambdas[0](sched.last_epoch)
        for group in optimizers["model"].param_groups:
            if group.get("prefix"):
                extra.setdefault(f"lr_{group['prefix']}", float(group["lr"]))
    return lr, extra

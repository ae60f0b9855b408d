"""AdamW with weight decay on weights only, and a linear warm-up + cosine learning-rate schedule."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from modalforge.contracts import CustomTrainStep
from modalforge.engine.config import TrainConfig
from modalforge.errors import PluginError, SpecError

# Parameters whose name contains one of these are temperatures/scales, never decayed.
NO_DECAY_NAMES: tuple[str, ...] = ("logit_scale", "logit_bias", "temperature")


def no_decay(name: str, param: torch.Tensor) -> bool:
    """Biases, norm weights (any 1-D or scalar parameter) and temperatures get no weight decay."""
    leaf = name.rsplit(".", 1)[-1]
    return param.ndim <= 1 or leaf == "bias" or any(k in name for k in NO_DECAY_NAMES)


def param_groups(
    named_params: Iterable[tuple[str, nn.Parameter]], weight_decay: float
) -> list[dict]:
    """Two AdamW groups: ``decay`` (matrices, kernels) and ``no_decay`` (see :func:`no_decay`).

    Frozen parameters are left out; empty groups are dropped.
    """
    decay, skip = [], []
    decay_names, skip_names = [], []
    seen: set[int] = set()
    for name, p in named_params:
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        if no_decay(name, p):
            skip.append(p)
            skip_names.append(name)
        else:
            decay.append(p)
            decay_names.append(name)
    groups = [
        {
            "params": decay,
            "weight_decay": weight_decay,
            "group": "decay",
            "param_names": decay_names,
        },
        {"params": skip, "weight_decay": 0.0, "group": "no_decay", "param_names": skip_names},
    ]
    return [g for g in groups if g["params"]]


def build_adamw(
    named_params: Iterable[tuple[str, nn.Parameter]], cfg: TrainConfig, device: torch.device
) -> torch.optim.AdamW:
    """AdamW over ``named_params`` with :func:`param_groups`; the fused kernel on CUDA."""
    groups = param_groups(named_params, cfg.weight_decay)
    if not groups:
        raise ValueError("no trainable parameters")
    fused = device.type == "cuda" and all(p.is_cuda for g in groups for p in g["params"])
    kwargs = {"fused": True} if fused else {}
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, **kwargs)


def warmup_cosine(step: int, *, warmup: int, total: int, min_ratio: float) -> float:
    """LR multiplier used for optimizer step ``step`` (0-based).

    Linear warm-up ``(step + 1) / warmup`` for the first ``warmup`` steps, then cosine decay from 1
    to ``min_ratio`` reached exactly at the last step ``total - 1``; constant afterwards.
    """
    if step < warmup:
        return (step + 1) / warmup
    span = max(1, total - 1 - warmup)
    progress = min(1.0, (step - warmup) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` applying :func:`warmup_cosine` to every param group's base lr."""
    warmup, ratio = cfg.warmup_steps, cfg.min_lr_ratio

    def factor(step: int) -> float:
        return warmup_cosine(step, warmup=warmup, total=total_steps, min_ratio=ratio)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def build_optimizers(
    model: nn.Module, loss: nn.Module | None, cfg: TrainConfig, device: torch.device
) -> dict[str, torch.optim.Optimizer]:
    """``{"model": AdamW}`` over the model's and the loss's parameters (``loss.<name>``), or the
    named optimizers of a model that implements :class:`CustomTrainStep`."""
    if isinstance(model, CustomTrainStep):
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
    named = list(model.named_parameters())
    if loss is not None:
        named += [(f"loss.{n}", p) for n, p in loss.named_parameters()]
    try:
        return {"model": build_adamw(named, cfg, device)}
    except ValueError:
        raise SpecError(
            "model", "the model has no trainable parameters", hint="unfreeze a component"
        ) from None

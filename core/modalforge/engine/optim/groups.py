"""Parameter groups: per-component rates by name prefix (``train.param_groups``), and weight decay
on weights only (never on biases, norms and temperatures) inside every group."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from modalforge.engine.config import TrainConfig
from modalforge.errors import SpecError

# Parameters whose name contains one of these are temperatures/scales, never decayed.
NO_DECAY_NAMES: tuple[str, ...] = ("logit_scale", "logit_bias", "temperature")
LOSS_PREFIX = "loss"


def no_decay(name: str, param: torch.Tensor) -> bool:
    """Biases, norm weights (any 1-D or scalar parameter) and temperatures get no weight decay."""
    leaf = name.rsplit(".", 1)[-1]
    return param.ndim <= 1 or leaf == "bias" or any(k in name for k in NO_DECAY_NAMES)


def param_groups(
    named_params: Iterable[tuple[str, nn.Parameter]], weight_decay: float
) -> list[dict]:
    """Two groups: ``decay`` (matrices, kernels) and ``no_decay`` (see :func:`no_decay`).

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


def named_trainable(model: nn.Module, loss: nn.Module | None) -> list[tuple[str, nn.Parameter]]:
    """The model's parameters, then the loss's under ``loss.`` (e.g. ``loss.logit_scale``)."""
    named = list(model.named_parameters())
    if loss is not None:
        named += [(f"{LOSS_PREFIX}.{n}", p) for n, p in loss.named_parameters()]
    return named


def prefixes_of(model: nn.Module, loss: nn.Module | None) -> list[str]:
    """Prefixes a user can name: each child module with trainable parameters, and each entry
    of a child that is a ``ModuleDict`` (``encoders.text``), plus ``loss``."""
    found: list[str] = []
    for name, child in model.named_children():
        if not any(p.requires_grad for p in child.parameters()):
            continue
        found.append(name)
        if isinstance(child, nn.ModuleDict):
            found += [
                f"{name}.{key}"
                for key, sub in child.items()
                if any(p.requires_grad for p in sub.parameters())
            ]
    for name, p in model.named_parameters(recurse=False):
        if p.requires_grad:
            found.append(name)
    if loss is not None and any(p.requires_grad for p in loss.parameters()):
        found.append(LOSS_PREFIX)
    return found


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def grouped_params(model: nn.Module, loss: nn.Module | None, cfg: TrainConfig) -> list[dict]:
    """Optimizer groups for ``model`` and ``loss``: one per ``train.param_groups`` prefix (the
    longest matching prefix wins) plus the rest, each split into ``decay`` / ``no_decay``.

    Every group carries its peak ``lr`` (``train.lr``, times ``lr_mult``, or its own ``lr``) and
    ``prefix``; schedules scale each group's rate. A prefix that matches no trainable parameter is
    a :class:`SpecError` listing the prefixes there are.
    """
    named = [(n, p) for n, p in named_trainable(model, loss) if p.requires_grad]
    specs = cfg.param_groups
    for prefix in specs:
        if not any(_under(n, prefix) for n, _ in named):
            have = ", ".join(prefixes_of(model, loss)) or "none"
            raise SpecError(
                f"train.param_groups.{prefix}",
                f"{prefix!r} is not the name prefix of any trainable parameter",
                hint=f"name one of: {have} (a longer prefix such as `head.net.0` works too)",
            )
    by_length = sorted(specs, key=len, reverse=True)

    def owner(name: str) -> str:
        return next((p for p in by_length if _under(name, p)), "")

    groups: list[dict] = []
    for prefix in ["", *sorted(specs)]:
        members = [(n, p) for n, p in named if owner(n) == prefix]
        spec = specs.get(prefix)
        lr, decay = cfg.lr, cfg.weight_decay
        if spec is not None:
            lr = spec.lr if spec.lr is not None else cfg.lr * (spec.lr_mult or 1.0)
            decay = spec.weight_decay if spec.weight_decay is not None else decay
        for group in param_groups(members, decay):
            group["lr"] = lr
            group["prefix"] = prefix
            if prefix:
                group["group"] = f"{prefix}/{group['group']}"
            groups.append(group)
    return groups

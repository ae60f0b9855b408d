"""LiT-style locking of a timm tower: freeze all but its last layer groups.

timm models describe their layer groups (stem, each block or stage, head) with ``group_matcher``;
``timm.models.group_parameters`` orders the parameters by group, as open_clip's
``TimmModel.lock`` uses it. Locked normalisation layers can also keep their running statistics.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from modalforge.deps import require
from modalforge.errors import SpecError


def layer_groups(model: nn.Module) -> dict[int, list[str]]:
    """Parameter names of ``model`` by layer group, first group (the stem) first."""
    timm_models = require("timm.models", package="timm")
    return dict(timm_models.group_parameters(model, model.group_matcher()))


def lock_groups(
    model: nn.Module, unlocked_groups: int, field: str, *, model_name: str
) -> list[str]:
    """Freeze every layer group of ``model`` but the last ``unlocked_groups``.

    Returns the names of the locked modules that carry normalisation statistics (batch norms), so
    the caller can keep them in eval mode. Raises a :class:`SpecError` on ``field`` when the model
    has no layer groups or not more groups than ``unlocked_groups``.
    """
    if not hasattr(model, "group_matcher"):
        raise SpecError(
            field,
            f"timm model {model_name!r} defines no layer groups, so it cannot be partly locked",
            hint="set unlocked_groups: 0 to lock the whole tower, or choose another model",
        )
    groups = layer_groups(model)
    if unlocked_groups >= len(groups):
        raise SpecError(
            field,
            f"timm model {model_name!r} has {len(groups)} layer groups; unlocking "
            f"{unlocked_groups} of them would lock nothing",
            hint=f"use a value from 1 to {len(groups) - 1}, or set freeze: false",
        )
    last_locked = max(groups) - unlocked_groups
    locked: set[str] = set()
    for gid in sorted(groups):
        if gid > last_locked:
            break
        for name in groups[gid]:
            model.get_parameter(name).requires_grad_(False)
            locked.add(name)
    module_groups = require("timm.models", package="timm").group_modules(
        model, model.group_matcher(), reverse=True
    )
    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm)
        and _is_locked(name, module, locked, module_groups.get(name), last_locked)
    ]


def _is_locked(
    name: str, module: nn.Module, locked: set[str], group: int | None, last_locked: int
) -> bool:
    """A norm is locked when its parameters are (or, without any, when its group is)."""
    own = [f"{name}.{p}" for p, _ in module.named_parameters(recurse=False)]
    if own:
        return all(p in locked for p in own)
    return group is not None and group <= last_locked


def set_eval(model: nn.Module, module_names: list[str]) -> None:
    """Put the named submodules of ``model`` in eval mode (after ``model.train()``)."""
    for name in module_names:
        module: Any = model.get_submodule(name)
        module.eval()

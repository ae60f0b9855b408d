"""Spec checks for the engine's choices, run by ``validate_components`` before anything is built.

The rule for ``train.*`` fields that only some choices read (``betas``, ``eps``,
``min_lr_ratio``, see ``train_fields`` of :mod:`modalforge.contracts.optim`): a value other than
the default, with an optimizer or schedule that does not read it, is an error naming the field.
Models with their own training step (generators) build their own optimizers: ``train.optimizer``,
``train.param_groups``, ``train.betas`` and ``train.eps`` do not apply to them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modalforge.contracts.optim import OPTIMIZER_FIELDS, SCHEDULER_FIELDS
from modalforge.engine.config import DEFAULT_OPTIMIZER, TrainConfig
from modalforge.errors import SpecError
from modalforge.registry import ComponentInfo


def _set(cfg: TrainConfig, field: str) -> bool:
    """Whether ``train.<field>`` differs from its default (a spec.yaml repeats the defaults)."""
    default = TrainConfig.model_fields[field].default
    value = getattr(cfg, field)
    return (tuple(value) if isinstance(value, (list, tuple)) else value) != default


def custom_step_errors(cfg: TrainConfig, model: str) -> list[SpecError]:
    """Errors for engine optimizer settings given to a model that builds its own optimizers."""
    hint = (
        "remove it: the model's own parameters set its optimizers (see `modalforge components "
        "generator`); train.lr, train.weight_decay and train.scheduler still apply"
    )
    what = f"{model} builds its own optimizers (a training step of its own)"
    errors = []
    if cfg.optimizer.name != DEFAULT_OPTIMIZER or cfg.optimizer.params:
        errors.append(
            SpecError("train.optimizer", f"{what}; train.optimizer does not apply", hint=hint)
        )
    if cfg.param_groups:
        errors.append(
            SpecError("train.param_groups", f"{what}; param groups do not apply", hint=hint)
        )
    for field in OPTIMIZER_FIELDS:
        if _set(cfg, field):
            errors.append(
                SpecError(f"train.{field}", f"{what}; train.{field} does not apply", hint=hint)
            )
    return errors


def engine_choice_errors(
    cfg: TrainConfig,
    *,
    custom_model: str | None,
    infos: Mapping[str, ComponentInfo],
    params: Mapping[str, Mapping[str, Any]],
) -> list[SpecError]:
    """Errors in ``train.*`` against the chosen optimizer and schedule (``infos`` by field path,
    ``params`` their validated parameters); ``custom_model``: the name of a model with its own
    training step, if it is one."""
    errors = custom_step_errors(cfg, custom_model) if custom_model else []
    checks = [("train.scheduler", SCHEDULER_FIELDS, "schedule")]
    if not custom_model:
        checks.insert(0, ("train.optimizer", OPTIMIZER_FIELDS, "optimizer"))
    for path, fields, what in checks:
        info = infos.get(path)
        if info is None:
            continue
        reads = getattr(info.factory, "train_fields", frozenset())
        own = params.get(path, {})
        for field in fields:
            if not _set(cfg, field):
                continue
            if field not in reads:
                errors.append(
                    SpecError(
                        f"train.{field}",
                        f"the {what} {info.name!r} ({path}) does not use train.{field}",
                        hint=f"remove train.{field}, or choose a {what} that uses it",
                    )
                )
            elif own.get(field) is not None and _plain(own[field]) != _plain(getattr(cfg, field)):
                errors.append(
                    SpecError(
                        f"{path}.params.{field}",
                        f"set to {_plain(own[field])!r}, and train.{field} to "
                        f"{_plain(getattr(cfg, field))!r}",
                        hint=f"set {field} in one place only",
                    )
                )
    return errors


def _plain(value: Any) -> Any:  # noqa: ANN401
    return tuple(value) if isinstance(value, (list, tuple)) else value

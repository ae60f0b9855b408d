"""The engine's registered choices of a spec, built once with the pipeline: ``train.optimizer``,
``train.scheduler``, ``train.callbacks`` and ``train.loggers``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modalforge.contracts import Callback, Optimizer, RunLogger, Scheduler
from modalforge.registry import Registry
from modalforge.spec.params import validate_params
from modalforge.spec.schema import PipelineSpec


@dataclass
class TrainParts:
    """What the trainer builds optimizers, schedules and the run's hooks from.

    ``callbacks`` and ``loggers`` are ``(field path, object)`` pairs, e.g.
    ``("train.callbacks.0", EarlyStopping(...))``.
    """

    optimizer: Optimizer
    scheduler: Scheduler
    callbacks: list[tuple[str, Callback]] = field(default_factory=list)
    loggers: list[tuple[str, RunLogger]] = field(default_factory=list)


def build_train_parts(
    spec: PipelineSpec,
    registry: Registry,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> TrainParts:
    """Instantiate the components ``spec.train`` names (``params``: validated, by field path)."""
    from modalforge.pipeline.build import instantiate

    built: dict[str, Any] = {}
    for kind, path, ref in spec.train.component_refs():
        info = registry.get(kind, ref.name, path=f"{path}.name")
        values = params[path] if params is not None else validate_params(info, ref.params, path)
        built[path] = instantiate(info, values, path)
    return TrainParts(
        optimizer=built["train.optimizer"],
        scheduler=built["train.scheduler"],
        callbacks=[(p, c) for p, c in built.items() if p.startswith("train.callbacks.")],
        loggers=[(p, c) for p, c in built.items() if p.startswith("train.loggers.")],
    )

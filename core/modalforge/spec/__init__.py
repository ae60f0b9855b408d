"""Pipeline specs: schema, YAML loading, overrides and component validation.

Exports are imported lazily: :mod:`modalforge.engine.config` imports :mod:`modalforge.spec.ref`,
and the schema imports the engine's config, so this package must not import the schema on the way.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "ComponentRef": "modalforge.spec.ref",
    "DataSpec": "modalforge.spec.schema",
    "ModelSpec": "modalforge.spec.schema",
    "PipelineSpec": "modalforge.spec.schema",
    "apply_overrides": "modalforge.spec.loader",
    "load_spec": "modalforge.spec.loader",
    "parse_spec": "modalforge.spec.loader",
    "validate_components": "modalforge.spec.loader",
}

__all__ = [
    "ComponentRef",
    "DataSpec",
    "ModelSpec",
    "PipelineSpec",
    "apply_overrides",
    "load_spec",
    "parse_spec",
    "validate_components",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'modalforge.spec' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover
    from modalforge.spec.loader import apply_overrides, load_spec, parse_spec, validate_components
    from modalforge.spec.ref import ComponentRef
    from modalforge.spec.schema import DataSpec, ModelSpec, PipelineSpec

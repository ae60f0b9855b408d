"""Pipeline specs: schema, YAML loading, overrides and component validation.

Exports are imported lazily: :mod:`modalforge.engine.config` imports :mod:`modalforge.spec.ref`,
and the schema imports the engine's config, so this package must not import the schema on the way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge.lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)


if TYPE_CHECKING:  # pragma: no cover
    from modalforge.spec.loader import apply_overrides, load_spec, parse_spec, validate_components
    from modalforge.spec.ref import ComponentRef
    from modalforge.spec.schema import DataSpec, ModelSpec, PipelineSpec

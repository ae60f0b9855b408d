"""Pipeline specs: schema, YAML loading, overrides and component validation."""

from modalforge.spec.loader import apply_overrides, load_spec, parse_spec, validate_components
from modalforge.spec.schema import ComponentRef, DataSpec, ModelSpec, PipelineSpec

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

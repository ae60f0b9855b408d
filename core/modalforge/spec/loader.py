"""Read a spec from YAML, apply ``a.b.c=value`` overrides, validate structure and components."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic
import yaml

from modalforge.errors import SpecError
from modalforge.registry import Registry
from modalforge.spec.params import spec_error_from_pydantic, validate_params
from modalforge.spec.presets import apply_presets, resolve_spec_path
from modalforge.spec.schema import PipelineSpec


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The YAML mapping in ``path``, or a :class:`SpecError` naming the file, line and column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(str(path), "spec file not found", hint="check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(str(path), f"cannot read spec file: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(
            str(path),
            f"invalid YAML at {where}{problem}",
            hint="fix the YAML syntax (indentation, quotes, colons)",
        ) from None
    if not isinstance(data, dict):
        raise SpecError(
            str(path),
            f"a spec must be a YAML mapping, got {type(data).__name__}",
            hint="start the file with `name: ...`, `data: ...`, `model: ...`",
        )
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set ``a.b.c=value`` entries (value parsed as YAML) into a copy of ``data``."""
    import copy

    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SpecError(
                item,
                "override must look like `a.b.c=value`",
                hint="e.g. `train.epochs=5` or `model.head.params.dropout=0.1`",
            )
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        parts = key.strip().split(".")
        node: Any = data
        for i, part in enumerate(parts[:-1]):
            node = _child(node, part, ".".join(parts[: i + 1]))
        _assign(node, parts[-1], value, key)
    return data


def _child(node: Any, part: str, path: str) -> Any:
    if isinstance(node, list):
        idx = _index(node, part, path)
        if isinstance(node[idx], str):  # `metrics: [accuracy]` → mapping form
            node[idx] = {"name": node[idx]}
        return node[idx]
    if not isinstance(node, dict):
        raise SpecError(path, f"cannot descend into a {type(node).__name__}")
    if isinstance(node.get(part), str):  # component shorthand `fusion: concat` → mapping form
        node[part] = {"name": node[part]}
    if node.get(part) is None:
        node[part] = {}
    return node[part]


def _assign(node: Any, part: str, value: Any, path: str) -> None:
    if isinstance(node, list):
        node[_index(node, part, path)] = value
    elif isinstance(node, dict):
        node[part] = value
    else:
        raise SpecError(path, f"cannot set a field on a {type(node).__name__}")


def _index(node: list[Any], part: str, path: str) -> int:
    try:
        idx = int(part)
        node[idx]
    except (ValueError, IndexError):
        raise SpecError(path, f"{part!r} is not an index of a list of {len(node)}") from None
    return idx


def parse_spec(data: dict[str, Any], *, source: str = "", host: Any = None) -> PipelineSpec:  # noqa: ANN401
    """Apply the spec's ``domain`` / ``preset`` defaults, then validate its structure; errors
    name the field path."""
    try:
        data = apply_presets(data, host)
    except SpecError as exc:
        if source:
            exc.args = (f"{source}: {exc.args[0]}",)
        raise
    try:
        return PipelineSpec.model_validate(data)
    except pydantic.ValidationError as exc:
        err = spec_error_from_pydantic(exc, "", schema=PipelineSpec)
        if source:
            err.args = (f"{source}: {err.args[0]}",)
        raise err from None


def load_spec(path: str | Path, overrides: list[str] | None = None) -> PipelineSpec:
    """Read, override and structurally validate a spec file (or ``recipe:NAME``, a recipe an
    installed plugin provides)."""
    path = resolve_spec_path(path)
    data = apply_overrides(read_yaml(path), overrides or [])
    return parse_spec(data, source=str(path))


def validate_components(spec: PipelineSpec, registry: Registry) -> dict[str, dict[str, Any]]:
    """Check every named component exists and its params type-check; nothing is built.

    Returns validated params (defaults filled) keyed by field path, e.g. ``"model.head"``.
    All problems are reported together.
    """
    from modalforge.engine.optim.checks import engine_choice_errors

    errors: list[SpecError] = []
    validated: dict[str, dict[str, Any]] = {}
    infos = {}
    for kind, path, ref in spec.component_refs():
        try:
            info = registry.get(kind, ref.name, path=f"{path}.name")
            validated[path] = validate_params(info, ref.params, path)
            infos[path] = info
        except SpecError as exc:
            errors.append(exc)
    custom = f"generator {spec.model.generator.name!r}" if spec.model.type == "generator" else None
    errors += engine_choice_errors(spec.train, custom_model=custom, infos=infos, params=validated)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise SpecError(
            "",
            f"{len(errors)} problems in the spec:\n  "
            + "\n  ".join(str(e).replace("\n", "\n    ") for e in errors),
        )
    return validated

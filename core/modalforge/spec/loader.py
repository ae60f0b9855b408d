"""Read a spec from YAML, apply ``a.b.c=value`` overrides, validate structure and components."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic

from modalforge.errors import SpecError
from modalforge.registry import Registry
from modalforge.spec.params import spec_error_from_pydantic, validate_params
from modalforge.spec.presets import apply_presets, resolve_spec_path
from modalforge.spec.safe_yaml import parse_yaml
from modalforge.spec.schema import PipelineSpec

#: largest spec file read (a spec is a few KB; a bench grid a few dozen)
MAX_SPEC_BYTES = 1 << 20


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The YAML mapping in ``path``, or a :class:`SpecError` naming the file, line and column.

    Parsed by :func:`~modalforge.spec.safe_yaml.parse_yaml`: duplicate or non-string keys, very
    deep nesting and alias bombs are errors; files over 1 MiB, binary files and files that are
    not UTF-8 are refused before parsing.
    """
    path = Path(path)
    source = str(path)
    if path.is_dir():
        raise SpecError(source, "is a folder, not a spec file", hint="pass the YAML file inside it")
    if not path.exists():
        raise SpecError(source, "spec file not found", hint="check the path")
    if not path.is_file():
        raise SpecError(source, "is not a regular file", hint="pass a YAML file")
    try:
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise SpecError(
                source,
                f"is {size / 2**20:.1f} MiB; a spec file may be at most "
                f"{MAX_SPEC_BYTES // 2**20} MiB",
                hint="a spec names components and values; keep data (captions, tables) in data "
                "files that a data set reads",
            )
        data = path.read_bytes()
    except OSError as exc:
        raise SpecError(source, f"cannot read spec file: {exc}") from None
    return _as_mapping(parse_yaml(_decode(data, source), source), source, empty=not data.strip())


def _decode(data: bytes, source: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SpecError(source, "is UTF-16 text", hint="save the file as UTF-8")
    if b"\x00" in data:
        raise SpecError(source, "is a binary file, not YAML text", hint="pass a YAML spec file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(
            source,
            f"is not UTF-8 text (byte {exc.start}: {data[exc.start : exc.start + 1]!r})",
            hint="save the file as UTF-8, or check that it is the YAML spec",
        ) from None


def _as_mapping(data: Any, source: str, *, empty: bool) -> dict[str, Any]:  # noqa: ANN401
    if empty or data is None:
        raise SpecError(
            source,
            "is empty" if empty else "holds no YAML value (only comments)",
            hint="a spec starts with `name: ...`, `data: ...`, `model: ...`",
        )
    if not isinstance(data, dict):
        raise SpecError(
            source,
            f"a spec must be a YAML mapping, got {type(data).__name__}",
            hint="start the file with `name: ...`, `data: ...`, `model: ...`",
        )
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set ``a.b.c=value`` entries (value parsed as YAML) into a copy of ``data``.

    Values are parsed like spec files (no duplicate keys, bounded depth and aliases); a value
    that is not valid YAML is taken as a plain string.
    """
    import copy

    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError(
                item,
                "override must look like `a.b.c=value`",
                hint="e.g. `train.epochs=5` or `model.head.params.dropout=0.1`",
            )
        parts = key.split(".")
        if any(not p.strip() for p in parts):
            raise SpecError(
                item,
                f"the field path {key!r} has an empty part (a leading, trailing or double dot)",
                hint="write the path with single dots, e.g. `model.head.params.dropout=0.1`",
            )
        value = parse_yaml(raw, f"override {key}", lenient=True) if raw.strip() else ""
        node: Any = data
        for i, part in enumerate(parts[:-1]):
            node = _child(node, part, ".".join(parts[: i + 1]), key)
        _assign(node, parts[-1], value, key)
    return data


def _child(node: Any, part: str, path: str, key: str) -> Any:  # noqa: ANN401
    if isinstance(node, list):
        idx = _index(node, part, path)
        if isinstance(node[idx], str):  # `metrics: [accuracy]` → mapping form
            node[idx] = {"name": node[idx]}
        child = node[idx]
    elif isinstance(node, dict):
        if isinstance(node.get(part), str):  # component shorthand `fusion: concat` → mapping
            node[part] = {"name": node[part]}
        if node.get(part) is None:
            node[part] = {}
        child = node[part]
    else:  # pragma: no cover - _child only descends into what it returned
        raise SpecError(path, f"cannot descend into a {type(node).__name__}")
    if not isinstance(child, (dict, list)):
        raise SpecError(
            key,
            f"{path} is {child!r} (type {type(child).__name__}), which has no fields to set",
            hint=f"set `{path}=...` itself, or check the field path",
        )
    return child


def _assign(node: Any, part: str, value: Any, path: str) -> None:  # noqa: ANN401
    if isinstance(node, list):
        node[_index(node, part, path)] = value
    else:
        node[part] = value


def _index(node: list[Any], part: str, path: str) -> int:
    try:
        idx = int(part)
        if idx < 0:
            raise IndexError(idx)
        node[idx]
    except (ValueError, IndexError):
        last = f"0 … {len(node) - 1}" if node else "none: the list is empty"
        raise SpecError(
            path,
            f"{part!r} is not an index of a list of {len(node)}",
            hint=f"indices: {last}; to replace the whole list write e.g. "
            f"`{path.rsplit('.', 1)[0]}=[a, b]`",
        ) from None
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

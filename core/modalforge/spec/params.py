"""Component parameter schemas derived from factory signatures, validated with pydantic."""

from __future__ import annotations

import difflib
import inspect
import typing
from typing import TYPE_CHECKING, Any

import pydantic
from pydantic import ConfigDict

from modalforge.errors import SpecError

if TYPE_CHECKING:
    from modalforge.registry import ComponentInfo


def params_model_for(info: ComponentInfo) -> type[pydantic.BaseModel]:
    """A pydantic model with one field per user-settable parameter of ``info``'s factory.

    Parameters without a type hint are rejected at registration time of the schema: a component's
    signature is its documentation and its validation, so it must be typed.
    """
    target = info.factory.__init__ if inspect.isclass(info.factory) else info.factory
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:  # noqa: BLE001 - unresolved forward refs: fall back to raw annotations
        hints = {}
    fields: dict[str, Any] = {}
    for p in info.signature.parameters.values():
        if p.name in info.injected or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        annotation = hints.get(p.name, p.annotation)
        if annotation is inspect.Parameter.empty:
            raise TypeError(
                f"{info.kind} {info.name!r} from plugin {info.provider!r}: parameter {p.name!r} "
                "has no type hint; every component parameter must be typed"
            )
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[p.name] = (annotation, default)
    return pydantic.create_model(
        f"{info.kind}_{info.name}_params",
        __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True),
        **fields,
    )


def validate_params(info: ComponentInfo, params: dict[str, Any], path: str) -> dict[str, Any]:
    """Validated parameters (defaults filled in) or a :class:`SpecError` naming each bad field."""
    injected = {k: v for k, v in params.items() if k in info.injected}
    settable = {k: v for k, v in params.items() if k not in info.injected}
    try:
        model = info.params_model.model_validate(settable)
    except pydantic.ValidationError as exc:
        raise spec_error_from_pydantic(exc, f"{path}.params", info) from None
    values = {k: getattr(model, k) for k in type(model).model_fields}
    values.update(injected)
    return values


def short_repr(value: Any, limit: int = 120) -> str:  # noqa: ANN401
    """``repr(value)`` cut to about ``limit`` characters (an input can be a huge structure)."""
    import reprlib

    shortener = reprlib.Repr()
    shortener.maxlevel, shortener.maxlist, shortener.maxdict = 3, 6, 6
    shortener.maxstring = shortener.maxother = limit // 2
    text = shortener.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def spec_error_from_pydantic(
    exc: pydantic.ValidationError,
    prefix: str,
    info: ComponentInfo | None = None,
    schema: type[pydantic.BaseModel] | None = None,
) -> SpecError:
    """One :class:`SpecError` listing every field error with its full dotted path.

    ``schema`` (the validated model) lets unknown-field errors suggest the intended field.
    """
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        path = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(type_fields(info)) if info is not None else ""
            if info is not None:
                msg = f"unknown field; {info.kind} {info.name!r} accepts: {allowed}"
            else:
                msg = "unknown field" + _suggest_field(schema, err["loc"])
        elif "input" in err and err["type"] != "missing":
            msg += f" (got {short_repr(err['input'])})"
        lines.append(f"{path}: {msg}")
    first_path = lines[0].split(":", 1)[0] if lines else prefix
    body = lines[0].split(": ", 1)[1] if len(lines) == 1 else "\n  " + "\n  ".join(lines)
    hint = None
    if info is not None:
        hint = f"see `modalforge components {info.kind} {info.name}` for its parameters"
    return SpecError(first_path if len(lines) == 1 else prefix, body, hint=hint)


def _suggest_field(schema: type[pydantic.BaseModel] | None, loc: tuple) -> str:
    """``; did you mean 'x'?`` (or the allowed fields) for an unknown key at ``loc``."""
    model = schema
    for part in loc[:-1]:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            model = None if not isinstance(part, int) else model
            continue
        model = _model_in(model.model_fields[part].annotation)
    if model is None:
        return ""
    fields = list(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), fields, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(fields)}"


def _model_in(annotation: Any) -> type[pydantic.BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def type_fields(info: ComponentInfo | None) -> list[str]:
    if info is None:
        return []
    return list(info.params_model.model_fields)


def describe_params(info: ComponentInfo) -> list[tuple[str, str, str]]:
    """``(name, type, default)`` rows for listings and the generated spec reference."""
    rows = []
    for name, f in info.params_model.model_fields.items():
        ann = f.annotation
        plain = isinstance(ann, type) and typing.get_origin(ann) is None  # not list[int], Literal
        type_name = ann.__name__ if plain else str(ann).replace("typing.", "")
        type_name = type_name.replace("NoneType", "None")
        default = "required" if f.is_required() else repr(f.default)
        rows.append((name, type_name, default))
    return rows

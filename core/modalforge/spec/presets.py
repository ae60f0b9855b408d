"""``domain:`` and ``preset:`` (defaults from plugins, merged under a spec) and ``recipe:NAME``.

Order of precedence, lowest first: the domain adapter's :meth:`~DomainAdapter.preset`, then each
named preset in the order listed, then the spec itself. Mappings merge key by key; a list or a
scalar the spec sets replaces the default; a component the spec names replaces the default
component unless it names the same one, whose parameters then merge.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modalforge.errors import SpecError

RECIPE_PREFIX = "recipe:"


def merge(base: Any, over: Any) -> Any:  # noqa: ANN401 - spec fragments
    """``over`` laid on ``base`` (see the module docstring); neither is modified."""
    if isinstance(over, str) and isinstance(base, Mapping) and base.get("name") == over:
        return copy.deepcopy(dict(base))  # `head: classification` keeps the preset's params
    if not (isinstance(base, Mapping) and isinstance(over, Mapping)):
        return copy.deepcopy(over)
    if "name" in base and "name" in over and base["name"] != over["name"]:
        return copy.deepcopy(dict(over))  # another component: its own params only
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        out[key] = merge(out[key], value) if key in out else copy.deepcopy(value)
    return out


def apply_presets(data: dict[str, Any], host: Any = None) -> dict[str, Any]:  # noqa: ANN401
    """``data`` with its ``domain`` and ``preset`` defaults merged in (``data`` wins)."""
    if data.get("domain") is None and not data.get("preset"):
        return data
    if host is None:
        from modalforge.plugin import get_host

        host = get_host()
    layers: list[dict[str, Any]] = []
    if data.get("domain") is not None:
        layers.append(_domain_defaults(data["domain"], host, data))
    names = data.get("preset") or []
    names = [names] if isinstance(names, str) else names
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise SpecError("preset", f"a preset name or a list of names, got {names!r}")
    for name in names:
        preset = host.extensions.presets.get(name)
        if preset is None:
            raise SpecError(
                "preset",
                f"no preset named {name!r}{_suggest(name, host.extensions.presets)}",
                hint="run `modalforge plugins` to see which plugins add presets",
            )
        values = preset.values()
        if not isinstance(values, Mapping):
            raise SpecError(
                "preset", f"preset {name!r} of plugin {preset.provider!r} is no mapping"
            )
        layers.append(dict(values))
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = merge(merged, layer)
    return merge(merged, data)


def _domain_defaults(ref: Any, host: Any, spec: Mapping[str, Any]) -> dict[str, Any]:  # noqa: ANN401
    from modalforge.pipeline.build import instantiate
    from modalforge.spec.params import validate_params
    from modalforge.spec.ref import ComponentRef

    try:
        ref = ComponentRef.model_validate(ref)
    except ValueError as exc:
        raise SpecError("domain", f"a domain name or {{name, params}}, got {ref!r}") from exc
    info = host.registry.get("adapter", ref.name, path="domain")
    adapter = instantiate(info, validate_params(info, ref.params, "domain"), "domain")
    defaults = adapter.preset_for(copy.deepcopy(dict(spec)))
    if not isinstance(defaults, Mapping):
        raise SpecError("domain", f"domain {ref.name!r} gives {type(defaults).__name__} defaults")
    return dict(defaults)


def _suggest(name: str, names: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(names), n=3, cutoff=0.5)
    if close:
        return "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    return f"; available: {', '.join(sorted(names))}" if names else "; none are installed"


def recipe_names(host: Any = None) -> list[str]:  # noqa: ANN401
    """The recipes the loaded plugins provide, sorted."""
    return sorted(_host(host).extensions.recipes)


def resolve_spec_path(spec: str | Path, host: Any = None) -> Path:  # noqa: ANN401
    """``recipe:NAME`` (``.yaml`` may be left out) → the recipe's file; other paths unchanged."""
    text = str(spec)
    if not text.startswith(RECIPE_PREFIX):
        return Path(spec)
    name = text.removeprefix(RECIPE_PREFIX)
    recipes = _host(host).extensions.recipes
    for candidate in (name, f"{name}.yaml", f"{name}.yml"):
        if candidate in recipes:
            return recipes[candidate][0]
    raise SpecError(
        text,
        f"no recipe named {name!r}{_suggest(name, recipes)}",
        hint="list them with `modalforge plugins` (recipes come from installed plugins)",
    )


def _host(host: Any) -> Any:  # noqa: ANN401
    if host is None:
        from modalforge.plugin import get_host

        host = get_host()
    return host

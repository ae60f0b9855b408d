"""The component registry: one table of (kind, name) → factory, filled by plugins.

A factory is a class or function with typed keyword parameters; its signature is the component's
parameter schema. Parameters named in :data:`INJECTED` are supplied by the pipeline builder from the
data and upstream components (so users never repeat sizes) and are excluded from the schema.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from modalforge.errors import DuplicateComponentError, SpecError, UnknownComponentError

# Constructor parameters the builder fills in, by kind of context they describe.
INJECTED: frozenset[str] = frozenset(
    {
        "modality",
        "modalities",
        "in_features",
        "in_dims",
        "in_dim",
        "target",
        "dataset",
        "encoders",
        "registry",
        "columns",
        "condition_dim",
    }
)
# Kinds that take fewer context parameters: a data set reader is the start of the pipeline, so
# `modalities` and `target` are its own (user-set) parameters there, e.g. a manifest's columns.
INJECTED_BY_KIND: dict[str, frozenset[str]] = {"dataset": frozenset({"registry"})}


def kinds() -> tuple[str, ...]:
    from modalforge.contracts import KINDS

    return tuple(KINDS)


@dataclass(frozen=True)
class ComponentInfo:
    """A registered component: where it came from and how to build it."""

    kind: str
    name: str
    factory: Callable[..., Any]
    provider: str
    description: str = ""
    tags: tuple[str, ...] = field(default=())

    @cached_property
    def signature(self) -> inspect.Signature:
        target = self.factory.__init__ if inspect.isclass(self.factory) else self.factory
        sig = inspect.signature(target)
        params = [p for p in sig.parameters.values() if p.name != "self"]
        return sig.replace(parameters=params)

    @property
    def injected(self) -> tuple[str, ...]:
        """Context parameters (sizes, modality) the builder passes in."""
        names = INJECTED_BY_KIND.get(self.kind, INJECTED)
        return tuple(p for p in self.signature.parameters if p in names)

    @cached_property
    def params_model(self) -> type:
        """A pydantic model of the user-settable parameters (see :mod:`modalforge.spec.params`)."""
        from modalforge.spec.params import params_model_for

        return params_model_for(self)

    @property
    def summary(self) -> str:
        doc = self.description or inspect.getdoc(self.factory) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""


class Registry:
    """Components by kind and name. Filled through :class:`Registrar` by plugins."""

    def __init__(self) -> None:
        self._table: dict[str, dict[str, ComponentInfo]] = {k: {} for k in kinds()}

    def add(self, info: ComponentInfo) -> None:
        if info.kind not in self._table:
            raise ValueError(
                f"unknown component kind {info.kind!r} from {info.provider!r}; "
                f"kinds are {', '.join(self._table)}"
            )
        existing = self._table[info.kind].get(info.name)
        if existing is not None:
            raise DuplicateComponentError(
                f"{info.kind} {info.name!r} is registered by both plugin {existing.provider!r} and "
                f"plugin {info.provider!r}",
                hint="uninstall one of them, or restrict loading with MODALFORGE_PLUGINS",
            )
        self._table[info.kind][info.name] = info

    def get(self, kind: str, name: str, *, path: str = "") -> ComponentInfo:
        """Look up a component; unknown names raise with close matches."""
        if kind not in self._table:
            raise SpecError(
                path, f"unknown component kind {kind!r}; kinds are {', '.join(self._table)}"
            )
        try:
            return self._table[kind][name]
        except KeyError:
            raise UnknownComponentError(
                path or kind,
                f"no {kind} named {name!r}{_suggest(name, self._table[kind])}",
                hint=f"run `modalforge components {kind}` to list all {kind}s, or `modalforge "
                "plugins` to see which plugins loaded",
            ) from None

    def names(self, kind: str) -> list[str]:
        return sorted(self._table[kind])

    def __iter__(self) -> Iterator[ComponentInfo]:
        for table in self._table.values():
            yield from (table[n] for n in sorted(table))

    def __len__(self) -> int:
        return sum(len(t) for t in self._table.values())

    def __contains__(self, key: tuple[str, str]) -> bool:
        kind, name = key
        return name in self._table.get(kind, {})


def _suggest(name: str, candidates: Mapping[str, object]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.5)
    if close:
        return "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    if candidates:
        return f"; available: {', '.join(sorted(candidates))}"
    return "; none are registered"


class Registrar:
    """What a plugin's ``register_components`` hook receives: adds components under its name."""

    def __init__(self, registry: Registry, provider: str) -> None:
        self._registry = registry
        self.provider = provider

    def add(
        self,
        kind: str,
        name: str,
        factory: Callable[..., Any],
        *,
        description: str = "",
        tags: tuple[str, ...] = (),
    ) -> None:
        self._registry.add(
            ComponentInfo(kind, name, factory, self.provider, description, tuple(tags))
        )

    def dataset(self, name: str, factory: Callable[..., Any], **kw: Any) -> None:
        self.add("dataset", name, factory, **kw)

    def loader(self, name: str, factory: Callable[..., Any], **kw: Any) -> None:
        self.add("loader", name, factory, **kw)

    def transform(self, name: str, factory: Callable[..., Any], **kw: Any) -> None:
        self.add("transform", name, factory, **kw)

    def encoder(self, name: str, factory: Callable[..., Any], **kw: Any) -> None:
        self.add("encoder", name, factory, **kw)

    def fusion(self, name: str, factory: Callable[..., Any], **kw: Any) -> None:
        self.add("fusion", name, factory, **kw)

    def head(self, name: str, factory: Callable[..., Any], **kw: Any) -> None:
        self.add("head", name, factory, **kw)

    def loss(self, name: str, factory: Callable[..., Any], **kw: Any) -> None:
        self.add("loss", name, factory, **kw)

    def generator(self, name: str, factory: Callable[..., Any], **kw: Any) -> None:
        self.add("generator", name, factory, **kw)

    def reranker(self, name: str, factory: Callable[..., Any], **kw: Any) -> None:
        self.add("reranker", name, factory, **kw)

    def adapter(self, name: str, factory: Callable[..., Any], **kw: Any) -> None:
        self.add("adapter", name, factory, **kw)

    def metric(self, name: str, factory: Callable[..., Any], **kw: Any) -> None:
        self.add("metric", name, factory, **kw)

    def optimizer(self, name: str, factory: Callable[..., Any], **kw: Any) -> None:
        self.add("optimizer", name, factory, **kw)

    def scheduler(self, name: str, factory: Callable[..., Any], **kw: Any) -> None:
        self.add("scheduler", name, factory, **kw)

    def callback(self, name: str, factory: Callable[..., Any], **kw: Any) -> None:
        self.add("callback", name, factory, **kw)

    def logger(self, name: str, factory: Callable[..., Any], **kw: Any) -> None:
        self.add("logger", name, factory, **kw)

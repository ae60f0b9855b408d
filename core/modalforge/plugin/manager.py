"""Plugin discovery and guarded loading.

Each entry point in group ``modalforge`` is loaded and registered on its own: a plugin that fails to
import or register is recorded with its real error and the others keep working. pluggy's
``load_setuptools_entrypoints`` stops at the first failure, so it is not used.
"""

from __future__ import annotations

import os
import traceback
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata

import pluggy

from modalforge.errors import DuplicateComponentError, PluginError
from modalforge.plugin import hookspecs, run_hooks
from modalforge.plugin.extensions import (
    CommandRegistrar,
    Extensions,
    PresetRegistrar,
    RecipeRegistrar,
)
from modalforge.registry import Registrar, Registry

ENV_VAR = "MODALFORGE_PLUGINS"


@dataclass
class PluginRecord:
    """One plugin's load result, as listed by ``modalforge plugins``."""

    name: str
    module: str
    distribution: str = ""
    version: str = ""
    components: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None
    error_detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class PluginHost:
    """The loaded plugins, the registry they filled and what else they added (commands,
    presets, recipes); ``plugins`` maps each loaded plugin's name to its module or object."""

    registry: Registry
    records: list[PluginRecord]
    extensions: Extensions = field(default_factory=Extensions)
    plugins: dict[str, object] = field(default_factory=dict)

    @property
    def failures(self) -> list[PluginRecord]:
        return [r for r in self.records if not r.ok]


def allowed_plugins() -> set[str] | None:
    """Names from ``MODALFORGE_PLUGINS`` (empty string: none), or ``None`` for all."""
    raw = os.environ.get(ENV_VAR)
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


def discover() -> list[metadata.EntryPoint]:
    eps = metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP)
    seen: dict[str, metadata.EntryPoint] = {}
    for ep in eps:  # the same distribution can be visible twice (editable + site); keep the first
        seen.setdefault(ep.name, ep)
    # Built-ins first: a third-party plugin that reuses a built-in name is the one that fails.
    return sorted(seen.values(), key=lambda e: (not _is_builtin(e), e.name))


def _is_builtin(ep: metadata.EntryPoint) -> bool:
    return ep.dist is not None and ep.dist.metadata["Name"] == "modalforge"


def load_plugins(
    entry_points: Iterable[metadata.EntryPoint] | None = None,
    *,
    extra: Iterable[tuple[str, object]] = (),
    allowed: set[str] | None = None,
    warn: bool = True,
) -> PluginHost:
    """Load plugins from entry points (default: installed ones, filtered by ``MODALFORGE_PLUGINS``).

    ``extra`` registers already-imported plugin objects ``(name, module_or_object)``, which tests
    and notebooks use to add a plugin without installing it.
    """
    eps = list(discover() if entry_points is None else entry_points)
    allowed = allowed_plugins() if allowed is None else allowed
    if allowed is not None:
        eps = [ep for ep in eps if ep.name in allowed]

    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.add_hookspecs(run_hooks)  # so a plugin implementing run hooks passes check_pending
    host = PluginHost(Registry(), [])

    candidates: list[tuple[str, str, object, metadata.EntryPoint | None]] = []
    for ep in eps:
        candidates.append((ep.name, ep.value, None, ep))
    for name, obj in extra:
        candidates.append((name, getattr(obj, "__name__", repr(obj)), obj, None))

    for name, module, obj, ep in candidates:
        record = PluginRecord(name=name, module=module)
        if ep is not None and ep.dist is not None:
            record.distribution = ep.dist.metadata["Name"] or ""
            record.version = ep.dist.version or ""
        host.records.append(record)
        try:
            plugin = ep.load() if ep is not None else obj
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - the plugin's failure, report it
            _fail(record, "import failed", exc)
            continue
        if _register(pm, host, record, plugin):
            host.plugins[name] = plugin

    if warn and host.failures:
        names = ", ".join(f"{r.name} ({r.error})" for r in host.failures)
        warnings.warn(
            f"modalforge: {len(host.failures)} plugin(s) failed to load and were skipped: {names}. "
            "Run `modalforge plugins` for details.",
            RuntimeWarning,
            stacklevel=2,
        )
    return host


def _register(
    pm: pluggy.PluginManager, host: PluginHost, record: PluginRecord, plugin: object
) -> bool:
    """Call the plugin's registration hooks into scratch tables first, so a failure leaves no
    partial entries; then merge. Returns whether the plugin loaded."""
    try:
        pm.register(plugin, name=record.name)
        pm.check_pending()  # a misspelt hook name is an error, not a silent no-op
    except Exception as exc:  # noqa: BLE001
        if pm.is_registered(plugin):
            pm.unregister(plugin)
        _fail(record, "not a valid plugin", exc)
        return False
    scratch, extra = Registry(), Extensions()
    registrars = {
        "register_components": {"registry": Registrar(scratch, record.name)},
        "register_commands": {"commands": CommandRegistrar(extra, record.name)},
        "register_presets": {"presets": PresetRegistrar(extra, record.name)},
        "register_recipes": {"recipes": RecipeRegistrar(extra, record.name)},
    }
    others = [p for p in pm.get_plugins() if p is not plugin]
    hook = "register_components"
    try:
        implemented = [h for h in hookspecs.REGISTRATION_HOOKS if _implements(pm, h, plugin)]
        if not implemented and not any(_implements(pm, h, plugin) for h in run_hooks.RUN_HOOKS):
            raise PluginError(
                "it implements none of the registration hooks "
                f"({', '.join(hookspecs.REGISTRATION_HOOKS)}) or run hooks",
                hint="decorate e.g. `def register_components(registry)` with "
                "modalforge.plugin.hookimpl",
            )
        for hook in implemented:  # the hook relay, restricted to this one plugin
            pm.subset_hook_caller(hook, remove_plugins=others)(**registrars[hook])
        for info in scratch:
            host.registry.add(info)
            record.components.append((info.kind, info.name))
        host.extensions.merge(extra)  # checks every name before adding any
    except DuplicateComponentError as exc:
        for kind, name in record.components:  # roll back what this plugin already added
            host.registry._table[kind].pop(name, None)
        record.components.clear()
        _fail(record, "duplicate component", exc)
        pm.unregister(plugin)
        return False
    except Exception as exc:  # noqa: BLE001
        _fail(record, f"{hook} raised", exc)
        pm.unregister(plugin)
        return False
    record.components += host.extensions.names_by(record.name)
    return True


def _implements(pm: pluggy.PluginManager, hook: str, plugin: object) -> bool:
    return any(i.plugin is plugin for i in getattr(pm.hook, hook).get_hookimpls())


def _fail(record: PluginRecord, what: str, exc: BaseException) -> None:
    record.error = f"{what}: {type(exc).__name__}: {exc}"
    record.error_detail = "".join(traceback.format_exception(exc))


_HOST: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, loaded on first use."""
    global _HOST
    if _HOST is None:
        _HOST = load_plugins()
    return _HOST


def get_registry() -> Registry:
    """The process-wide registry of all loaded components."""
    return get_host().registry


def set_host(host: PluginHost | None) -> None:
    """Replace (or with ``None``, reset) the process-wide host; used by tests and embedding apps."""
    global _HOST
    _HOST = host


def require_plugin(name: str) -> PluginRecord:
    """The record of a loaded plugin, or a :class:`PluginError` naming its failure."""
    for record in get_host().records:
        if record.name == name:
            if not record.ok:
                raise PluginError(f"plugin {name!r} failed to load: {record.error}")
            return record
    raise PluginError(f"plugin {name!r} is not installed or was excluded by {ENV_VAR}")

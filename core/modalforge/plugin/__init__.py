"""Plugin hooks and loading."""

from modalforge.plugin.hookspecs import ENTRY_POINT_GROUP, hookimpl
from modalforge.plugin.manager import (
    PluginHost,
    PluginRecord,
    get_host,
    get_registry,
    load_plugins,
    set_host,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginHost",
    "PluginRecord",
    "get_host",
    "get_registry",
    "hookimpl",
    "load_plugins",
    "set_host",
]

"""The built-in plugins: the entry points modalforge's own distribution declares."""

from importlib import metadata

BUILTIN_PLUGINS: frozenset[str] = frozenset(
    ep.name for ep in metadata.distribution("modalforge").entry_points if ep.group == "modalforge"
)

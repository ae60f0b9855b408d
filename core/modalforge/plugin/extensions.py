"""What plugins add besides components: CLI commands, spec presets and recipes.

Each kind has a small registrar handed to the plugin's hook (see :mod:`.hookspecs`) and a table
on the host that records which plugin added what, so duplicates name both providers.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modalforge.errors import DuplicateComponentError, PluginError

Configure = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class Command:
    """A ``modalforge`` sub-command added by a plugin."""

    name: str
    help: str
    configure: Configure
    run: Run
    provider: str


@dataclass(frozen=True)
class Preset:
    """Named spec defaults: ``defaults`` is a spec fragment (a mapping) or a YAML file's path."""

    name: str
    defaults: Mapping[str, Any] | Path
    description: str
    provider: str

    def values(self) -> dict[str, Any]:
        """The defaults as a mapping (a YAML file is read now; errors name it)."""
        if isinstance(self.defaults, Path):
            from modalforge.spec.loader import read_yaml

            return read_yaml(self.defaults)
        return dict(self.defaults)


@dataclass
class Extensions:
    """Commands, presets and recipes by name, filled by the plugins' registration hooks."""

    commands: dict[str, Command] = field(default_factory=dict)
    presets: dict[str, Preset] = field(default_factory=dict)
    recipes: dict[str, tuple[Path, str]] = field(default_factory=dict)  # name → (file, provider)

    def merge(self, other: Extensions) -> None:
        """Add ``other``'s entries; a name already taken raises, naming both plugins."""
        for table, what in (("commands", "command"), ("presets", "preset"), ("recipes", "recipe")):
            mine, theirs = getattr(self, table), getattr(other, table)
            for name, entry in theirs.items():
                if name in mine:
                    raise DuplicateComponentError(
                        f"{what} {name!r} is registered by both plugin {_provider(mine[name])!r} "
                        f"and plugin {_provider(entry)!r}",
                        hint="uninstall one of them, or restrict loading with MODALFORGE_PLUGINS",
                    )
        for table in ("commands", "presets", "recipes"):
            getattr(self, table).update(getattr(other, table))

    def names_by(self, provider: str) -> list[tuple[str, str]]:
        """``(kind, name)`` of everything ``provider`` added, for ``modalforge plugins``."""
        out = [("command", n) for n, c in self.commands.items() if c.provider == provider]
        out += [("preset", n) for n, p in self.presets.items() if p.provider == provider]
        out += [("recipe", n) for n, r in self.recipes.items() if r[1] == provider]
        return out


def _provider(entry: Any) -> str:  # noqa: ANN401 - a Command, Preset or recipe tuple
    return entry[1] if isinstance(entry, tuple) else entry.provider


class CommandRegistrar:
    """What a plugin's ``register_commands`` hook receives."""

    def __init__(self, table: Extensions, provider: str) -> None:
        self._table, self.provider = table, provider

    def add(self, name: str, *, help: str, configure: Configure, run: Run) -> None:  # noqa: A002
        if not name or name.startswith("-") or " " in name:
            raise PluginError(f"command name {name!r} is not a valid sub-command name")
        if name in self._table.commands:
            raise PluginError(f"command {name!r} is added twice by plugin {self.provider!r}")
        self._table.commands[name] = Command(name, help, configure, run, self.provider)


class PresetRegistrar:
    """What a plugin's ``register_presets`` hook receives."""

    def __init__(self, table: Extensions, provider: str) -> None:
        self._table, self.provider = table, provider

    def add(
        self, name: str, defaults: Mapping[str, Any] | str | Path, *, description: str = ""
    ) -> None:
        if not isinstance(defaults, Mapping):
            defaults = Path(defaults)
            if not defaults.is_file():
                raise PluginError(f"preset {name!r}: defaults file {defaults} does not exist")
        self._table.presets[name] = Preset(name, defaults, description, self.provider)


class RecipeRegistrar:
    """What a plugin's ``register_recipes`` hook receives."""

    def __init__(self, table: Extensions, provider: str) -> None:
        self._table, self.provider = table, provider

    def add(self, name: str, path: str | Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise PluginError(f"recipe {name!r}: {path} does not exist")
        self._table.recipes[name] = (path, self.provider)

    def add_folder(self, folder: str | Path) -> None:
        """Every ``*.yaml`` / ``*.yml`` file in ``folder``, named by its file name."""
        folder = Path(folder)
        for path in sorted(folder.iterdir()):
            if path.suffix in (".yaml", ".yml") and path.is_file():
                self.add(path.name, path)

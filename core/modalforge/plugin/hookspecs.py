"""The hooks a modalforge plugin implements (pluggy project name ``modalforge``).

Each is a register-callback hook: the plugin receives a registrar and calls it. The host calls
every hook through pluggy's hook relay, one plugin at a time, so that what a plugin adds is
recorded under its name and one failing plugin is reported without affecting the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from modalforge.plugin.extensions import CommandRegistrar, PresetRegistrar, RecipeRegistrar
    from modalforge.registry import Registrar

PROJECT = "modalforge"
ENTRY_POINT_GROUP = "modalforge"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# The registration hooks, in the order the host calls them for each plugin.
REGISTRATION_HOOKS = ("register_components", "register_commands", "register_presets",
                      "register_recipes")  # fmt: skip


@hookspec
def register_components(registry: Registrar) -> None:
    """Add this plugin's components: ``registry.encoder("name", Factory)`` and so on.

    Keep heavy imports (timm, transformers, monai) inside the factories, not at module level, so
    that loading plugins stays fast.
    """


@hookspec
def register_commands(commands: CommandRegistrar) -> None:
    """Add ``modalforge`` sub-commands: ``commands.add("name", help=..., configure=fn, run=fn)``.

    ``configure(parser)`` adds the command's arguments to its ``argparse`` parser; ``run(args)``
    does the work and returns the exit code. Errors it raises as
    :class:`~modalforge.errors.ModalforgeError` become one line and exit code 2, as for every
    built-in command.
    """


@hookspec
def register_presets(presets: PresetRegistrar) -> None:
    """Add spec presets: ``presets.add("name", {...defaults...}, description=...)`` (or the path
    of a YAML file). A spec that says ``preset: name`` gets those defaults before validation;
    every value the spec itself sets wins."""


@hookspec
def register_recipes(recipes: RecipeRegistrar) -> None:
    """Add ready-made specs: ``recipes.add_folder(path)`` (each ``*.yaml`` in it) or
    ``recipes.add("name.yaml", path)``; ``recipe:NAME`` then names one wherever a spec is taken."""

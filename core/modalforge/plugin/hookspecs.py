"""The hooks a modalforge plugin implements (pluggy project name ``modalforge``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from modalforge.registry import Registrar

PROJECT = "modalforge"
ENTRY_POINT_GROUP = "modalforge"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_components(registry: Registrar) -> None:
    """Add this plugin's components: ``registry.encoder("name", Factory)`` and so on.

    Keep heavy imports (timm, transformers, monai) inside the factories, not at module level, so
    that loading plugins stays fast.
    """

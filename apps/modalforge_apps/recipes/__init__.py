"""Packaged example specs (recipes) and spec presets, registered as a plugin like any other.

``recipe:NAME`` names a recipe wherever a spec is taken (the CLI, :func:`modalforge.load_spec`,
:func:`modalforge.load_trained`, benchmark files), e.g. ``modalforge train
recipe:digits_gan.yaml``, so an installed package's recipes run without knowing where pip put
them; other plugins add their own through the same ``register_recipes`` hook. The presets in
``presets/`` (``preset: image_classification``) give a spec sensible defaults to start from.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from modalforge.plugin.hookspecs import hookimpl
from modalforge.spec.presets import RECIPE_PREFIX as PREFIX

if TYPE_CHECKING:
    from modalforge.plugin.extensions import PresetRegistrar, RecipeRegistrar

__all__ = ["PREFIX", "names", "recipe_path", "register_presets", "register_recipes", "resolve"]


def _folder() -> Path:
    return Path(str(resources.files(__name__)))


def names() -> list[str]:
    """The built-in recipes' file names, sorted."""
    return sorted(f.name for f in _folder().iterdir() if f.name.endswith((".yaml", ".yml")))


def recipe_path(name: str) -> Path:
    """The file of built-in recipe ``name`` (``.yaml`` may be left out); ``LookupError`` naming
    the available ones if there is none."""
    available = names()
    for candidate in (name, f"{name}.yaml"):
        if candidate in available:
            return _folder() / candidate
    raise LookupError(f"no built-in recipe {name!r}; there are: {', '.join(available)}")


def resolve(spec: str) -> str:
    """``recipe:NAME`` → the file of that recipe (from any installed plugin); any other spec
    string unchanged."""
    if not spec.startswith(PREFIX):
        return spec
    from modalforge.spec.presets import resolve_spec_path

    return str(resolve_spec_path(spec))


@hookimpl
def register_recipes(recipes: RecipeRegistrar) -> None:
    recipes.add_folder(_folder())


@hookimpl
def register_presets(presets: PresetRegistrar) -> None:
    for path in sorted((_folder() / "presets").glob("*.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        presets.add(path.stem, path, description=first.lstrip("# ").strip())

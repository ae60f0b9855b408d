"""Packaged example specs (recipes): ``recipe:NAME`` wherever the CLI or a benchmark file takes a
spec, e.g. ``modalforge train recipe:digits_gan.yaml``, so an installed package's recipes run
without knowing where pip put them."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

PREFIX = "recipe:"


def names() -> list[str]:
    """The built-in recipes' file names, sorted."""
    folder = resources.files(__name__)
    return sorted(f.name for f in folder.iterdir() if f.name.endswith((".yaml", ".yml")))


def recipe_path(name: str) -> Path:
    """The file of built-in recipe ``name`` (``.yaml`` may be left out); ``LookupError`` naming
    the available ones if there is none."""
    available = names()
    for candidate in (name, f"{name}.yaml"):
        if candidate in available:
            return Path(str(resources.files(__name__).joinpath(candidate)))
    raise LookupError(f"no built-in recipe {name!r}; there are: {', '.join(available)}")


def resolve(spec: str) -> str:
    """``recipe:NAME`` → the recipe's path; any other spec string unchanged."""
    if spec.startswith(PREFIX):
        return str(recipe_path(spec.removeprefix(PREFIX)))
    return spec

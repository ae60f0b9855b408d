"""Render the packaged plugin template into a new, installable plugin project.

The template lives in ``template/`` as package data. File contents and paths use ``{{key}}``
placeholders (see :func:`template_context`); every template file ends in ``.tmpl`` so that ruff and
pytest leave the template alone, and the suffix is dropped when rendering.
"""

from __future__ import annotations

import importlib.util
import keyword
import re
import sys
from collections.abc import Iterator
from importlib import metadata, resources
from importlib.abc import Traversable
from pathlib import Path

from modalforge.errors import ModalforgeError
from modalforge.io import atomic_dir, check_output_dir
from modalforge.plugin import ENTRY_POINT_GROUP

TEMPLATE_DIR = "template"
SUFFIX = ".tmpl"
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
PLACEHOLDER_RE = re.compile(r"\{\{(\w+)\}\}")
# Dotfiles are stored without their dot: package-data globs and some tools skip hidden files.
RENAMES = {"gitignore": ".gitignore"}


def validate_name(name: str) -> str:
    """Return ``name`` if it can be the plugin's package, module and entry-point name.

    It must be a lowercase Python identifier (PEP 8 package name), not a keyword, and must not
    shadow a standard-library module, an importable package or an installed modalforge plugin.
    """
    fix = "use a lowercase Python package name such as `acme_vision`"
    if not NAME_RE.match(name):
        raise ModalforgeError(
            f"plugin name {name!r} is not a valid package name (lowercase letters, digits and "
            "underscores, starting with a letter)",
            hint=fix,
        )
    if keyword.iskeyword(name) or name in sys.stdlib_module_names:
        raise ModalforgeError(
            f"plugin name {name!r} is a Python keyword or a standard-library module", hint=fix
        )
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            dist = ep.dist.metadata["Name"] if ep.dist is not None else "?"
            raise ModalforgeError(
                f"a modalforge plugin named {name!r} is already installed (distribution {dist!r})",
                hint="choose another name; plugin names must be unique",
            )
    spec = importlib.util.find_spec(name)
    if spec is not None and spec.origin not in (None, "namespace"):  # plain folders don't count
        raise ModalforgeError(
            f"plugin name {name!r} would shadow the importable module at {spec.origin}",
            hint="choose a name that is not already taken by an installed package",
        )
    return name


def template_context(name: str) -> dict[str, str]:
    """Placeholder values for plugin ``name``."""
    from modalforge import __version__

    camel = "".join(part.capitalize() for part in name.split("_") if part)
    return {
        "name": name,
        "dist": name.replace("_", "-"),
        "encoder_name": f"{name}_mlp",
        "encoder_class": f"{camel}MLP",
        "modalforge_version": __version__,
    }


def render(text: str, context: dict[str, str]) -> str:
    """Replace ``{{key}}`` placeholders; an unknown key is a bug in the template."""

    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in context:
            raise KeyError(f"template placeholder {{{{{key}}}}} has no value")
        return context[key]

    return PLACEHOLDER_RE.sub(sub, text)


def template_files() -> Iterator[tuple[str, str]]:
    """``(relative path, text)`` of every template file, paths with ``/`` and the suffix kept."""
    root = resources.files("modalforge_apps.scaffold").joinpath(TEMPLATE_DIR)

    def walk(node: Traversable, prefix: str) -> Iterator[tuple[str, str]]:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            rel = f"{prefix}{child.name}"
            if child.is_dir():
                if child.name != "__pycache__":
                    yield from walk(child, rel + "/")
            elif child.name.endswith(SUFFIX):
                yield rel, child.read_text(encoding="utf-8")

    yield from walk(root, "")


def create_plugin(name: str, dest: Path) -> Path:
    """Create the plugin project ``dest/<name>/`` and return its path.

    Raises :class:`ModalforgeError` for an invalid name or a target folder that exists and is not
    empty. The project is written to a temporary folder first, so a failure leaves nothing behind.
    """
    validate_name(name)
    check_output_dir(Path(dest).expanduser(), "--dest")
    target = Path(dest).expanduser().resolve() / name
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ModalforgeError(
            f"{target} already exists and is not empty",
            hint="pass another --dest, or remove the folder first",
        )
    context = template_context(name)
    with atomic_dir(target) as tmp:
        for rel, text in template_files():
            rel = render(rel[: -len(SUFFIX)], context)
            out = tmp / RENAMES.get(rel, rel)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(render(text, context), encoding="utf-8")
    return target

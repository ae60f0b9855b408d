"""Lazy imports of optional heavy dependencies, with an install hint when one is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from modalforge.errors import MissingDependencyError


def require(module: str, *, extra: str | None = None, package: str | None = None) -> ModuleType:
    """Import ``module`` now, or raise naming the pip extra (or package) that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pkg = package or module.split(".")[0]
        how = f"pip install 'modalforge[{extra}]'" if extra else f"pip install {pkg}"
        raise MissingDependencyError(
            f"this component needs the package {pkg!r}, which failed to import ({exc})",
            hint=how,
        ) from exc

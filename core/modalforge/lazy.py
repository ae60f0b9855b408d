"""Lazy re-exports for package ``__init__`` modules: a name is imported on first access, so
importing the package stays cheap (``import modalforge`` must not import torch)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], names: list[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: attribute ``n`` of ``exports`` comes from
    module ``exports[n]`` and is cached in the package's namespace; ``names`` is its ``__all__``."""

    def __getattr__(name: str) -> Any:  # noqa: ANN401 - any exported object
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return list(names)

    return __getattr__, __dir__

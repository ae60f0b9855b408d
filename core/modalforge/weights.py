"""Checks shared by components that load local weight files (timm, CLIP towers, open_clip)."""

from __future__ import annotations

from pathlib import Path

from modalforge.errors import SpecError

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


def check_weights_file(path: str, field: str, *, what: str = "weights file", hint: str) -> Path:
    """``path`` as a :class:`Path` if it is an existing file with a known weights suffix; else a
    :class:`SpecError` naming ``field`` (``hint`` says which file is expected)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise SpecError(field, f"{what} {path} does not exist", hint=hint)
    if not p.name.endswith(WEIGHT_SUFFIXES):
        raise SpecError(
            field,
            f"{what} {path} has an unknown suffix",
            hint=f"use one of {', '.join(WEIGHT_SUFFIXES)}",
        )
    return p

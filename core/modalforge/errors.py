"""Errors a user can cause. Each carries a message that names the field or file and the fix.

The CLI turns any :class:`ModalforgeError` into one line on stderr and exit code 2; anything else
is a bug in modalforge and keeps its traceback.
"""

from __future__ import annotations


class ModalforgeError(Exception):
    """Base class for every error caused by user input (spec, data, checkpoint, plugin)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n  fix: {hint}")


class SpecError(ModalforgeError):
    """A pipeline spec is malformed or names something invalid; the message names the field path."""

    def __init__(self, path: str, message: str, *, hint: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message, hint=hint)


class UnknownComponentError(SpecError):
    """A spec or call named a component that no loaded plugin registered."""


class DuplicateComponentError(ModalforgeError):
    """Two providers registered the same (kind, name)."""


class SizeMismatchError(SpecError):
    """Declared sizes of connected components disagree (encoder → fusion → head)."""


class DataError(ModalforgeError):
    """A data set is unreadable, or lacks a modality or target the pipeline needs."""


class CheckpointError(ModalforgeError):
    """A checkpoint is missing, truncated, foreign, or from a different architecture."""


class OutputError(ModalforgeError):
    """An output path cannot be written as asked: a file where a folder goes, or the reverse."""


class PluginError(ModalforgeError):
    """A plugin failed to import or register."""


class MissingDependencyError(ModalforgeError):
    """An optional dependency a component needs is not installed."""

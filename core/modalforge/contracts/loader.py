"""Column-loader contract: how a manifest reader turns one row's cells into a modality's sample."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modalforge.modality import Modality

if TYPE_CHECKING:
    from modalforge.data.table import ManifestTable


class ColumnLoader(ABC):
    """Reads one modality of a manifest: an image path, a caption, a group of numeric columns.

    A manifest reader's spec declares each modality as ``{loader: NAME, column: C}`` (or
    ``columns: [C1, C2, ...]``) with the loader's own ``params``. The reader builds the loader
    with ``columns`` (the declared column names, a context parameter like an encoder's
    ``modality``), calls :meth:`bind` once with the whole table, then :meth:`load` per sample.
    File paths go through :meth:`ManifestTable.resolve_path`, which resolves them against the
    manifest's folder and refuses paths outside the allowed root.
    """

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)

    @abstractmethod
    def bind(self, name: str, table: ManifestTable, field: str) -> Modality:
        """Check every row's cells and return the :class:`Modality` this loader yields as
        ``name``. Raise a :class:`~modalforge.errors.DataError` naming the row
        (``table.where(i)``) for a bad cell, and ``field`` (the spec path) for a bad column."""

    @abstractmethod
    def load(self, row: int) -> Any:  # noqa: ANN401 - a raw sample or a tensor
        """Row ``row``'s sample (a raw sample such as a PIL image, a string, or a tensor). Raise
        any exception for an unreadable file: the reader reports it or skips the sample."""

    def reads_files(self) -> bool:
        """Whether :meth:`load` opens files (whose failures ``on_error: skip`` may skip)."""
        return False

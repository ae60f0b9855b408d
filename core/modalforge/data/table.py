"""A manifest as column loaders see it: string cells, each row's origin, and its path policy."""

from __future__ import annotations

from dataclasses import dataclass

from modalforge.data.paths import PathPolicy
from modalforge.errors import DataError


@dataclass
class ManifestTable:
    """Rows of one or more manifest files, as ``{column: [cell, ...]}`` strings.

    ``files[i]`` and ``lines[i]`` say where row ``i`` comes from; ``policies[i]`` resolves its
    relative paths (against its own file's folder) and refuses paths outside the allowed root.
    A missing cell is ``""``.
    """

    columns: dict[str, list[str]]
    files: list[str]
    lines: list[int]
    policies: list[PathPolicy]

    def __len__(self) -> int:
        return len(self.lines)

    def where(self, row: int) -> str:
        """``"line 7 of data/train.csv"``, for messages."""
        return f"line {self.lines[row]} of manifest {self.files[row]}"

    def column(self, name: str, field: str) -> list[str]:
        """The cells of column ``name``; a :class:`DataError` naming ``field`` if there is none."""
        if name not in self.columns:
            files = ", ".join(dict.fromkeys(self.files))
            raise DataError(
                f"{field}: manifest {files} has no column {name!r} "
                f"(it has: {', '.join(self.columns) or 'no columns'})",
                hint=f"name one of its columns in {field}, or fix the manifest's header / keys",
            )
        return self.columns[name]

    def resolve_path(self, value: str, row: int) -> str:
        """Row ``row``'s file path as an absolute path inside the allowed root."""
        return self.policies[row].resolve(value, self.where(row))

"""Where a manifest's file paths may point: relative to its folder, never outside an allowed root.

A manifest is data a user may have received from elsewhere; a row such as
``../../home/me/.ssh/id_rsa`` must not make a pipeline read files outside the data set. Paths are
checked lexically (``..`` resolved, symbolic links inside the root are the owner's business).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from modalforge.errors import DataError


@dataclass(frozen=True)
class PathPolicy:
    """Resolves relative paths against ``base`` (the manifest's folder) and refuses any path
    outside ``root`` (by default ``base``; a spec may allow a wider folder). ``field`` names the
    spec parameter that sets the root, for the error message.
    """

    base: Path
    root: Path
    field: str = "data.dataset.params.root"

    @classmethod
    def for_manifest(cls, manifest: Path, root: str | None, field: str) -> PathPolicy:
        base = Path(os.path.abspath(manifest.parent))
        if root is None:
            return cls(base, base, field)
        return cls(base, Path(os.path.abspath(Path(root).expanduser())), field)

    def resolve(self, value: str, where: str) -> str:
        """``value`` as an absolute path inside the root; a :class:`DataError` naming ``where``
        (the file and row) otherwise."""
        if "://" in value:
            raise DataError(
                f"{where}: {value!r} is a URL; only local files are read",
                hint="download the files first (e.g. with img2dataset) and list local paths",
            )
        p = Path(value).expanduser()
        full = Path(os.path.normpath(p if p.is_absolute() else self.base / p))
        if not _inside(full, self.root):
            raise DataError(
                f"{where}: path {value!r} points outside {self.root} (to {full})",
                hint=f"move the file under {self.root}, or allow a wider folder with "
                f"{self.field}: /path/to/data",
            )
        return str(full)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True

"""Load a two-tower model once per process and hand its halves to the image and text encoders.

A spec with ``hf_clip_image`` and ``hf_clip_text`` on the same folder builds two encoders; the
model is read from disk once and each encoder keeps only its own tower, so no parameter is held
twice. Once both halves are taken the entry is dropped; a side asked for again (another
pipeline in the same process) gets a freshly loaded model, so two pipelines never share weights.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

SIDES = ("image", "text")


class PairCache:
    """Loaded models by key, until both their image and text sides have been taken.

    At most ``max_entries`` models wait for their other side; older ones are dropped first, so a
    process that builds only image towers does not keep every text tower alive.
    """

    def __init__(self, max_entries: int = 2) -> None:
        self.max_entries = max_entries
        self._entries: dict[Hashable, tuple[Any, set[str]]] = {}
        self.loads = 0  # how many models were read from disk (for tests and diagnostics)

    def take(self, key: Hashable, side: str, load: Callable[[], Any]) -> Any:
        """The model for ``key`` (loaded with ``load()`` if needed), marking ``side`` as taken."""
        if side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}, got {side!r}")
        entry = self._entries.get(key)
        if entry is None or side in entry[1]:
            entry = (load(), set())
            self.loads += 1
            self._entries.pop(key, None)
            self._entries[key] = entry
            while len(self._entries) > self.max_entries:  # oldest first (insertion order)
                del self._entries[next(iter(self._entries))]
        model, taken = entry
        taken.add(side)
        if taken >= set(SIDES):
            del self._entries[key]
        return model

    def clear(self) -> None:
        """Forget every cached model (frees the halves no encoder has taken)."""
        self._entries.clear()


PAIR_CACHE = PairCache()


def file_key(*paths: Path) -> tuple[tuple[str, int], ...]:
    """Resolved paths with their modification times, so a rewritten folder is loaded again."""
    out = []
    for p in paths:
        p = p.resolve()
        out.append((str(p), p.stat().st_mtime_ns if p.exists() else 0))
    return tuple(out)

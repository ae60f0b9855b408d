"""Tar shards in the WebDataset layout, indexed once so samples can be read by position.

A sample is the group of members sharing a key: ``dir/000123.jpg`` and ``dir/000123.txt`` form
sample ``dir/000123`` with fields ``jpg`` and ``txt`` (the field is everything after the first dot
of the file name, as in WebDataset). Indexing reads only the tar headers (seeking over the data).
"""

from __future__ import annotations

import os
import posixpath
import re
import tarfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from modalforge.errors import DataError
from modalforge_datasets.common import PackedStrings
from modalforge_datasets.images import BadSamples, describe

_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)$")


def expand_braces(pattern: str) -> list[str]:
    """Bash-style brace expansion: ``a-{000..002}.tar`` → three names, ``{x,y}`` → two.

    Numeric ranges keep zero padding (to the longer bound's width when either bound has a leading
    zero) and may count down; braces nest; a brace without a comma or range stays literal.
    """
    start = pattern.find("{")
    if start < 0:
        return [pattern]
    depth, end, commas = 0, -1, []
    for i in range(start, len(pattern)):
        c = pattern[i]
        depth += (c == "{") - (c == "}")
        if c == "," and depth == 1:
            commas.append(i)
        if depth == 0:
            end = i
            break
    if end < 0:
        raise ValueError(f"unbalanced '{{' in {pattern!r}")
    head, body, tail = pattern[:start], pattern[start + 1 : end], pattern[end + 1 :]
    rests = expand_braces(tail)
    if commas:
        bounds = [start, *commas, end]
        parts = [pattern[a + 1 : b] for a, b in zip(bounds, bounds[1:], strict=False)]
        options = [o for part in parts for o in expand_braces(part)]
    elif m := _RANGE.match(body):
        options = _number_range(m.group(1), m.group(2))
    else:
        options = ["{" + o + "}" for o in expand_braces(body)]
    return [head + o + rest for o in options for rest in rests]


def _number_range(first: str, last: str) -> list[str]:
    a, b = int(first), int(last)
    padded = any(len(s.lstrip("-")) > 1 and s.lstrip("-").startswith("0") for s in (first, last))
    width = max(len(first), len(last)) if padded else 0
    step = 1 if b >= a else -1
    return [str(n).zfill(width) for n in range(a, b + step, step)]


def shard_paths(spec: str | list[str], field: str) -> list[Path]:
    """The shard files a pattern (or list of patterns) names; each must exist."""
    patterns = [spec] if isinstance(spec, str) else list(spec)
    paths: list[Path] = []
    for pattern in patterns:
        try:
            names = expand_braces(pattern)
        except ValueError as exc:
            raise DataError(
                f"{field}: {exc}", hint="e.g. data/shard-{000000..000009}.tar"
            ) from None
        paths.extend(Path(n).expanduser() for n in names)
    if not paths:
        raise DataError(f"{field}: names no shards", hint="e.g. data/shard-{000000..000009}.tar")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise DataError(
            f"{field}: shard {missing[0]} does not exist{more} ({len(paths)} shards named)",
            hint="check the pattern's folder and number range (relative paths are from the "
            "working directory)",
        )
    return paths


@dataclass
class ShardIndex:
    """Where each sample's image and caption bytes lie: ``(shard, offset, size)`` per field."""

    shards: list[str]
    keys: PackedStrings
    shard: np.ndarray  # int32 (n,)
    image: np.ndarray  # int64 (n, 2): offset, size
    image_field: PackedStrings
    caption: np.ndarray  # int64 (n, 2)
    caption_is_json: np.ndarray  # bool (n,)

    def __len__(self) -> int:
        return len(self.keys)


def index_shards(
    paths: list[Path],
    image_keys: tuple[str, ...],
    caption_keys: tuple[str, ...],
    bad: BadSamples,
) -> ShardIndex:
    """Index every complete sample of ``paths``; damaged or incomplete ones go to ``bad``."""
    keys, shard, image, image_field, caption, is_json = [], [], [], [], [], []
    for s, path in enumerate(paths):
        for key, fields in _members(path, bad).items():
            img = next((k for k in image_keys if k in fields), None)
            cap = next((k for k in caption_keys if k in fields), None)
            if img is None or cap is None:
                lacks = f"no image ({'/'.join(image_keys)})" if img is None else ""
                lacks += " and " if img is None and cap is None else ""
                lacks += f"no caption ({'/'.join(caption_keys)})" if cap is None else ""
                have = ", ".join(sorted(fields))
                bad.handle(f"sample {key!r} in shard {path}", f"{lacks}; it has: {have}")
                continue
            keys.append(key)
            shard.append(s)
            image.append(fields[img])
            image_field.append(img)
            caption.append(fields[cap])
            is_json.append(cap == "json")
    return ShardIndex(
        shards=[str(p) for p in paths],
        keys=PackedStrings(keys),
        shard=np.asarray(shard, dtype=np.int32),
        image=np.asarray(image, dtype=np.int64).reshape(-1, 2),
        image_field=PackedStrings(image_field),
        caption=np.asarray(caption, dtype=np.int64).reshape(-1, 2),
        caption_is_json=np.asarray(is_json, dtype=bool),
    )


def _members(path: Path, bad: BadSamples) -> dict[str, dict[str, tuple[int, int]]]:
    """``{key: {field: (offset, size)}}`` of a shard's regular files, in archive order."""
    with path.open("rb") as f:
        if f.read(2) == b"\x1f\x8b":
            raise DataError(
                f"shard {path} is gzip-compressed, which cannot be read by position",
                hint="store shards as plain .tar (images are compressed already), e.g. "
                "`gunzip -c shard.tar.gz > shard.tar`",
            )
    size = path.stat().st_size
    samples: dict[str, dict[str, tuple[int, int]]] = {}
    try:
        with tarfile.open(path, mode="r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                folder, name = posixpath.split(member.name)
                if "." not in name or name.startswith("."):
                    continue
                stem, field = name.split(".", 1)
                key = posixpath.join(folder, stem)
                if member.offset_data + member.size > size:
                    samples.pop(key, None)  # its other members may be gone too: one bad sample
                    bad.handle(f"{member.name} in shard {path}", "the shard is truncated here")
                    break
                samples.setdefault(key, {})[field.lower()] = (member.offset_data, member.size)
    except (tarfile.TarError, OSError) as exc:
        # Keep the members read before the damage; the caller drops incomplete samples.
        bad.handle(
            f"shard {path}",
            f"not a readable tar file after {len(samples)} samples: {describe(exc)}",
        )
    return samples


class ShardReader:
    """Reads byte ranges of shards, opening each file lazily in the process that reads it.

    At most ``max_open`` files stay open (least recently used closed first). Handles are never
    shared across processes: a forked or unpickled copy opens its own.
    """

    def __init__(self, shards: list[str], max_open: int = 64) -> None:
        self.shards = shards
        self.max_open = max_open
        self._open: OrderedDict[int, BinaryIO] = OrderedDict()
        self._pid = os.getpid()

    def read(self, shard: int, offset: int, size: int) -> bytes:
        f = self._file(shard)
        f.seek(offset)
        data = f.read(size)
        if len(data) != size:
            raise OSError(f"read {len(data)} of {size} bytes: the shard is truncated")
        return data

    def _file(self, shard: int) -> BinaryIO:
        if self._pid != os.getpid():  # forked: the parent's handles share its file positions
            self._open, self._pid = OrderedDict(), os.getpid()
        f = self._open.get(shard)
        if f is None:
            f = open(self.shards[shard], "rb")  # noqa: SIM115 - kept open for later reads
            self._open[shard] = f
            while len(self._open) > self.max_open:
                self._open.popitem(last=False)[1].close()
        self._open.move_to_end(shard)
        return f

    def close(self) -> None:
        for f in self._open.values():
            f.close()
        self._open.clear()

    def __getstate__(self) -> dict:
        return {"shards": self.shards, "max_open": self.max_open}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["shards"], state["max_open"])

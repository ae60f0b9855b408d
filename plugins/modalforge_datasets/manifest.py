"""``image_text_manifest``: image–caption pairs listed in a CSV, TSV or JSON Lines manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from modalforge.errors import DataError
from modalforge_datasets.common import PackedStrings
from modalforge_datasets.image_text import ImageTextReader
from modalforge_datasets.images import BadSamples, OnError, decode_image, describe
from modalforge_datasets.manifest_io import Manifest, ManifestFormat, read_manifest, split_files

FIELD = "data.dataset.params"


class ImageTextManifestDataset(ImageTextReader):
    """Images (modality ``image``, raw RGB PIL images) and captions (``text``, raw strings).

    Either ``path`` names one manifest, split by its ``split_column`` if it has one (else all rows
    are ``train``), or ``train`` / ``val`` / ``test`` name one manifest per split. The format comes
    from the suffix (``.csv``, ``.tsv``, ``.jsonl``) unless ``format`` is set. Image paths may be
    relative: to ``image_root`` if set, else to the manifest's folder.

    Columns other than image, caption and split are kept as strings, readable with
    ``load(split).extra(i)``; ``keep_columns`` also puts those columns into each sample.
    Images are converted to RGB (see :func:`modalforge_datasets.images.to_rgb`); the image encoder's
    preprocessing resizes them to ``image_size`` when set. An unreadable or missing image is skipped
    (``on_error=skip``: ``None`` from ``__getitem__``, which the engine drops, counts and reports)
    or raises a :class:`~modalforge.errors.DataError` naming the file (``on_error=raise``).
    """

    reader_name = "image_text_manifest"

    def __init__(
        self,
        path: str | None = None,
        train: str | None = None,
        val: str | None = None,
        test: str | None = None,
        format: ManifestFormat = "auto",  # noqa: A002 - the user-facing parameter name
        image_column: str = "image",
        caption_column: str = "caption",
        split_column: str = "split",
        image_root: str | None = None,
        keep_columns: tuple[str, ...] = (),
        image_size: int | None = None,
        on_error: OnError = "skip",
    ) -> None:
        per_split = split_files(
            path,
            train,
            val,
            test,
            field=FIELD,
            example="path: data/pairs.csv, or train: data/train.jsonl and test: data/test.jsonl",
        )
        if image_size is not None and image_size < 1:
            raise ValueError(f"image_size must be positive, got {image_size}")
        reserved = {"image", "text", "masks", image_column, caption_column}
        clash = sorted(reserved.intersection(keep_columns))
        if clash:
            raise DataError(
                f"{FIELD}.keep_columns: {', '.join(map(repr, clash))} would overwrite a modality",
                hint="keep only columns other than the image, caption, 'image', 'text' and 'masks'",
            )
        self.image_column, self.caption_column = image_column, caption_column
        self.keep_columns = tuple(keep_columns)
        self.image_size = image_size
        self.on_error = on_error
        BadSamples(on_error, FIELD)  # validates on_error now
        self._root = Path(image_root).expanduser() if image_root is not None else None
        self._splits: dict[str, ManifestSplit] = {}
        if path is not None:
            manifest = self._read(path, f"{FIELD}.path", format)
            if split_column in manifest.columns:
                for name, rows in _group(manifest, split_column).items():
                    self._splits[name] = self._split(manifest, rows)
            else:
                self._splits["train"] = self._split(manifest, np.arange(len(manifest)))
        else:
            for split, file in per_split.items():
                manifest = self._read(file, f"{FIELD}.{split}", format)
                self._splits[split] = self._split(manifest, np.arange(len(manifest)))

    def _read(self, file: str, field: str, fmt: ManifestFormat) -> Manifest:
        manifest = read_manifest(Path(file).expanduser(), fmt, field)
        needed = {
            "image_column": self.image_column,
            "caption_column": self.caption_column,
            **{f"keep_columns ({c!r})": c for c in self.keep_columns},
        }
        for param, column in needed.items():
            if column not in manifest.columns:
                raise DataError(
                    f"{FIELD}.{param.split(' ')[0]}: manifest {file} has no column {column!r} "
                    f"(it has: {', '.join(manifest.columns) or 'no columns'})",
                    hint=f"name the column in {FIELD}.{param.split(' ')[0]}, "
                    "or fix the manifest's header / keys",
                )
        if not len(manifest):
            raise DataError(f"{field}: manifest {file} has no rows", hint="add image–caption rows")
        return manifest

    def _split(self, manifest: Manifest, rows: np.ndarray) -> ManifestSplit:
        root = self._root if self._root is not None else manifest.path.parent
        images = manifest.columns[self.image_column]
        paths = [_resolve(images[i], root) for i in rows]
        captions = manifest.columns[self.caption_column]
        special = {self.image_column, self.caption_column}
        extra = {c: v for c, v in manifest.columns.items() if c not in special}
        return ManifestSplit(
            manifest=str(manifest.path),
            images=PackedStrings(paths),
            captions=PackedStrings([captions[i] for i in rows]),
            lines=np.asarray([manifest.lines[i] for i in rows], dtype=np.int64),
            extra={c: PackedStrings([v[i] for i in rows]) for c, v in extra.items()},
            keep_columns=self.keep_columns,
            bad=BadSamples(self.on_error, FIELD),
        )


class ManifestSplit(Dataset):
    """One split's rows: ``{"image": PIL RGB image, "text": caption, <keep_columns>: str}``."""

    def __init__(
        self,
        *,
        manifest: str,
        images: PackedStrings,
        captions: PackedStrings,
        lines: np.ndarray,
        extra: dict[str, PackedStrings],
        keep_columns: tuple[str, ...],
        bad: BadSamples,
    ) -> None:
        self.manifest = manifest
        self.images, self.captions, self.lines = images, captions, lines
        self._extra = extra
        self.keep_columns = keep_columns
        self.bad = bad

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        path = self.images[index]
        problem = _unreadable(path)
        if problem is None:
            try:
                image = decode_image(path)
            except Exception as exc:  # noqa: BLE001 - any decoding failure makes the sample bad
                problem = describe(exc)
        if problem is not None:
            where = f"{path or '(empty)'} (line {self.lines[index]} of manifest {self.manifest})"
            self.bad.handle(where, problem)
            return None
        sample: dict[str, Any] = {"image": image, "text": self.captions[index]}
        for column in self.keep_columns:
            sample[column] = self._extra[column][index]
        return sample

    def extra(self, index: int) -> dict[str, str]:
        """The row's other columns (split column included), as strings."""
        return {column: values[index] for column, values in self._extra.items()}

    def path(self, index: int) -> str:
        """The resolved image path of row ``index``."""
        return self.images[index]


def _resolve(value: str, root: Path) -> str:
    if not value or "://" in value:
        return value
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else root / p)


def _unreadable(path: str) -> str | None:
    if not path:
        return "the row has no image path"
    if "://" in path:
        return "a URL; only local files are read (download the images first, e.g. with img2dataset)"
    if not Path(path).is_file():
        return "no such file"
    return None


def _group(manifest: Manifest, column: str) -> dict[str, np.ndarray]:
    values = manifest.columns[column]
    missing = [i for i, v in enumerate(values) if not v]
    if missing:
        raise DataError(
            f"manifest {manifest.path}, line {manifest.lines[missing[0]]}: empty split column "
            f"{column!r} ({len(missing)} rows)",
            hint=f"give every row a split (train / val / test), or rename the column so "
            f"{FIELD}.split_column does not match it",
        )
    order = list(dict.fromkeys(values))
    return {name: np.flatnonzero(np.asarray(values) == name) for name in order}

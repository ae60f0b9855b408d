"""``image_folder``: labelled images in one sub-folder per class (torchvision's ``ImageFolder``).

Two layouts are read::

    root/cat/001.png            root/train/cat/001.png
    root/dog/002.jpg            root/train/dog/002.jpg
                                root/test/cat/003.png ...

The first gives one split, ``all`` (divide it with ``data.split``); the second one split per
top-level folder whose name is a split name (``train``, ``val``/``valid``/``validation``,
``test``). ``layout: auto`` tells them apart; ``flat`` and ``splits`` force one.

Samples are ``{"image": PIL image, "target": class index}``; the image encoder's preprocessing
turns the image into a tensor. Per-sample metadata for ``data.split.group``: ``path`` (relative
to ``root``), ``file`` (the file name) and ``class``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from modalforge.contracts import Target, TargetKind
from modalforge.errors import DataError
from modalforge.modality import Modality
from modalforge_datasets.common import PackedStrings, SplitsReader
from modalforge_datasets.images import BadSamples, OnError, decode_image, describe

FIELD = "data.dataset.params"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
SPLIT_FOLDERS = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}
Layout = Literal["auto", "flat", "splits"]


class ImageFolderDataset(SplitsReader):
    """Images under ``root`` labelled by their class folder; see the module docstring.

    ``classes`` fixes the class order (default: sorted folder names) and must match the folders;
    ``mode`` is ``RGB`` (3 channels) or ``L`` (grayscale, 1 channel). ``image_size`` declares the
    size the image encoder's preprocessing resizes to (default: the encoder's own). Unreadable
    images are skipped and counted (``on_error: skip``) or stop the run (``raise``). Hidden files
    and files with other suffixes are ignored.
    """

    reader_name = "image_folder"

    def __init__(
        self,
        root: str,
        layout: Layout = "auto",
        classes: tuple[str, ...] | None = None,
        mode: Literal["RGB", "L"] = "RGB",
        image_size: int | None = None,
        extensions: tuple[str, ...] = IMAGE_SUFFIXES,
        on_error: OnError = "skip",
    ) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DataError(
                f"{FIELD}.root: {root} is not a folder",
                hint="give the folder that holds one sub-folder per class (or train/ and test/)",
            )
        if image_size is not None and image_size < 1:
            raise ValueError(f"image_size must be positive, got {image_size}")
        self.mode = mode
        self.image_size = image_size
        self.on_error = on_error
        BadSamples(on_error, FIELD)  # validates on_error now
        suffixes = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)
        folders = _split_folders(self.root, layout)
        found = {split: _scan(folder, suffixes) for split, folder in folders.items()}
        for split, files in found.items():
            if not files:
                raise DataError(
                    f"{FIELD}.root: {folders[split]} holds no images with suffix "
                    f"{', '.join(suffixes)} in class folders",
                    hint="put images in <root>/<class>/ (or <root>/<split>/<class>/), or set "
                    f"{FIELD}.extensions",
                )
        names = sorted({c for files in found.values() for c in files})
        self.class_names = self._classes(names, classes)
        index = {c: i for i, c in enumerate(self.class_names)}
        self._splits: dict[str, FolderSplit] = {}
        for split, files in found.items():
            paths = [(c, p) for c in sorted(files) for p in files[c]]
            self._splits[split] = FolderSplit(
                paths=[str(p) for _, p in paths],
                labels=np.asarray([index[c] for c, _ in paths], dtype=np.int64),
                root=self.root,
                classes=[c for c, _ in paths],
                mode=mode,
                bad=BadSamples(on_error, FIELD),
            )

    def _classes(self, found: list[str], classes: tuple[str, ...] | None) -> tuple[str, ...]:
        if classes is None:
            if len(found) < 2:
                raise DataError(
                    f"{FIELD}.root: {self.root} has {len(found)} class folder(s); a classifier "
                    "needs at least two",
                    hint="put each class's images in a sub-folder named after the class",
                )
            return tuple(found)
        extra = sorted(set(found) - set(classes))
        if extra:
            raise DataError(
                f"{FIELD}.classes: folder(s) {', '.join(map(repr, extra))} under {self.root} are "
                f"not among the declared classes ({', '.join(classes)})",
                hint="add them to classes, or remove the folders",
            )
        if len(set(classes)) != len(classes):
            raise DataError(f"{FIELD}.classes: {list(classes)} lists a class twice")
        return tuple(classes)

    @property
    def modalities(self) -> dict[str, Modality]:
        channels = 1 if self.mode == "L" else 3
        size = self.image_size
        return {"image": Modality("image", "image2d", (channels, size, size), dtype="image")}

    @property
    def target(self) -> Target:
        return Target(TargetKind.MULTICLASS, len(self.class_names), self.class_names)

    def labels(self, split: str) -> np.ndarray:
        return self.load(split).labels

    def metadata(self, split: str) -> dict[str, Sequence[Any]]:
        data = self.load(split)
        return {"path": data.relative_paths(), "file": data.files(), "class": list(data.classes)}


class FolderSplit(Dataset):
    """One split's images: ``{"image": PIL image, "target": LongTensor ()}``."""

    def __init__(
        self,
        *,
        paths: list[str],
        labels: np.ndarray,
        root: Path,
        classes: list[str],
        mode: str,
        bad: BadSamples,
    ) -> None:
        self.paths = PackedStrings(paths)
        self.labels = labels
        self.root = str(root)
        self.classes = PackedStrings(classes)
        self.mode = mode
        self.bad = bad

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        path = self.paths[index]
        try:
            image = decode_image(path)
        except Exception as exc:  # noqa: BLE001 - any decoding failure makes the sample bad
            self.bad.handle(path, describe(exc))
            return None
        if self.mode == "L":
            image = image.convert("L")
        return {"image": image, "target": torch.tensor(int(self.labels[index]))}

    def path(self, index: int) -> str:
        return self.paths[index]

    def relative_paths(self) -> list[str]:
        return [os.path.relpath(p, self.root) for p in self.paths]

    def files(self) -> list[str]:
        return [os.path.basename(p) for p in self.paths]

    def modality_samples(self, name: str) -> Any:  # noqa: ANN401 - an iterable
        if name == "target":
            return [torch.tensor(int(v)) for v in self.labels]
        return (s[name] for s in (self[i] for i in range(len(self))) if s is not None)


def _split_folders(root: Path, layout: Layout) -> dict[str, Path]:
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    named = [p for p in subdirs if p.name.lower() in SPLIT_FOLDERS]
    if layout == "auto":
        layout = "splits" if named and len(named) == len(subdirs) else "flat"
    if layout == "flat":
        return {"all": root}
    if not named:
        raise DataError(
            f"{FIELD}.layout: {root} has no split folders (train/, val/, test/)",
            hint="use layout: flat for <root>/<class>/ images, and data.split to divide them",
        )
    out: dict[str, Path] = {}
    for p in named:
        split = SPLIT_FOLDERS[p.name.lower()]
        if split in out:
            raise DataError(f"{FIELD}.root: both {out[split].name}/ and {p.name}/ are {split!r}")
        out[split] = p
    return out


def _scan(folder: Path, suffixes: tuple[str, ...]) -> dict[str, list[Path]]:
    """``{class folder name: sorted image files}`` under ``folder`` (recursively per class)."""
    out: dict[str, list[Path]] = {}
    for cls in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(
            p
            for p in cls.rglob("*")
            if p.is_file()
            and p.suffix.lower() in suffixes
            and not any(part.startswith(".") for part in p.relative_to(cls).parts)
        )
        if files:
            out[cls.name] = files
    return out

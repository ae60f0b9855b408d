"""``webdataset``: image–caption pairs in WebDataset-style tar shards, read by position.

The engine shuffles and resumes by index, so instead of streaming the shards (as the
``webdataset`` package does) each shard's headers are indexed once and members are read by their
byte offsets: a map-style data set, without the ``webdataset`` dependency.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

from torch.utils.data import Dataset

from modalforge.errors import DataError
from modalforge_datasets.image_text import ImageTextReader
from modalforge_datasets.images import BadSamples, OnError, decode_image, describe
from modalforge_datasets.shards import ShardIndex, ShardReader, index_shards, shard_paths

FIELD = "data.dataset.params"
SPLIT_NAMES = ("train", "val", "test")


class WebDatasetReader(ImageTextReader):
    """Images (modality ``image``, raw RGB PIL images) and captions (``text``, raw strings).

    ``shards`` (all data, split ``train``) or ``train_shards`` / ``val_shards`` / ``test_shards``
    name plain (uncompressed) tar files by brace pattern (``data/shard-{000000..000009}.tar``) or
    list. A sample's image is its first field in ``image_keys``; its caption its first field in
    ``caption_keys``: ``txt`` (UTF-8 text) or ``json`` (an object; ``json_caption_field`` holds the
    caption). Samples lacking either, and damaged shards, are left out when indexing
    (``on_error=skip``, with a warning) or raise a :class:`~modalforge.errors.DataError`.
    An image that fails to decode is skipped when read (``None``, dropped and counted by the engine)
    or raises, likewise.
    """

    reader_name = "webdataset"

    def __init__(
        self,
        shards: str | list[str] | None = None,
        train_shards: str | list[str] | None = None,
        val_shards: str | list[str] | None = None,
        test_shards: str | list[str] | None = None,
        image_keys: tuple[str, ...] = ("jpg", "jpeg", "png", "webp"),
        caption_keys: tuple[str, ...] = ("txt", "json"),
        json_caption_field: str = "caption",
        image_size: int | None = None,
        on_error: OnError = "skip",
    ) -> None:
        per_split = {
            s: p
            for s, p in zip(SPLIT_NAMES, (train_shards, val_shards, test_shards), strict=True)
            if p
        }
        if (shards is None) == (not per_split):
            raise DataError(
                f"{FIELD}: set either `shards` (one split, train) or `train_shards` / "
                "`val_shards` / `test_shards`" + (", not both" if shards is not None else ""),
                hint="e.g. train_shards: data/train-{000000..000099}.tar",
            )
        if not image_keys or not caption_keys:
            raise DataError(f"{FIELD}: image_keys and caption_keys must not be empty")
        if image_size is not None and image_size < 1:
            raise ValueError(f"image_size must be positive, got {image_size}")
        self.image_size = image_size
        self.on_error = on_error
        BadSamples(on_error, FIELD)  # validates on_error now
        fields = (
            {"train": (shards, f"{FIELD}.shards")}
            if shards is not None
            else {s: (p, f"{FIELD}.{s}_shards") for s, p in per_split.items()}
        )
        keys = tuple(k.lower().lstrip(".") for k in image_keys)
        captions = tuple(k.lower().lstrip(".") for k in caption_keys)
        self._splits: dict[str, ShardSplit] = {}
        for split, (spec, field) in fields.items():
            bad = BadSamples(on_error, FIELD)
            index = index_shards(shard_paths(spec, field), keys, captions, bad)
            if bad.count > 1:
                warnings.warn(
                    f"{field}: left {bad.count} incomplete or damaged samples out of split "
                    f"{split!r} (the first is named above)",
                    stacklevel=2,
                )
            if not len(index):
                raise DataError(
                    f"{field}: the shards hold no complete image–caption samples",
                    hint=f"samples need an image ({', '.join(keys)}) and a caption "
                    f"({', '.join(captions)}) member with the same key, e.g. 0001.jpg + 0001.txt",
                )
            self._splits[split] = ShardSplit(index, json_caption_field, BadSamples(on_error, FIELD))


class ShardSplit(Dataset):
    """One split's samples ``{"image": PIL RGB image, "text": caption}``, in shard order."""

    def __init__(self, index: ShardIndex, json_caption_field: str, bad: BadSamples) -> None:
        self.index = index
        self.json_caption_field = json_caption_field
        self.bad = bad
        self.reader = ShardReader(index.shards)

    def __len__(self) -> int:
        return len(self.index)

    def key(self, index: int) -> str:
        """``"<shard path>:<sample key>"`` of sample ``index``."""
        return f"{self.index.shards[self.index.shard[index]]}:{self.index.keys[index]}"

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        ix = self.index
        shard = int(ix.shard[index])
        field = ix.image_field[index]
        try:
            image = decode_image(self.reader.read(shard, *map(int, ix.image[index])))
        except Exception as exc:  # noqa: BLE001 - any decoding failure makes the sample bad
            self.bad.handle(f"{self.key(index)}.{field}", describe(exc))
            return None
        try:
            text = self._caption(self.reader.read(shard, *map(int, ix.caption[index])), index)
        except Exception as exc:  # noqa: BLE001
            kind = "json" if ix.caption_is_json[index] else "txt"
            self.bad.handle(f"{self.key(index)}.{kind}", describe(exc))
            return None
        return {"image": image, "text": text}

    def _caption(self, data: bytes, index: int) -> str:
        if not self.index.caption_is_json[index]:
            return data.decode("utf-8").strip()
        obj = json.loads(data)
        caption = obj.get(self.json_caption_field) if isinstance(obj, dict) else None
        if not isinstance(caption, str):
            raise ValueError(f"no string field {self.json_caption_field!r} in the JSON")
        return caption.strip()

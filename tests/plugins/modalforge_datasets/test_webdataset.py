"""webdataset: brace patterns, shard indexing, random access equal to a sequential read, errors."""

from __future__ import annotations

import gzip
import io
import json
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from modalforge.engine.data import EpochLoader
from modalforge.errors import DataError
from modalforge.pipeline.build import TransformedDataset
from modalforge_datasets import WebDatasetReader
from modalforge_datasets.images import decode_image
from modalforge_datasets.shards import expand_braces
from tests.plugins.modalforge_datasets.image_files import encode, pixels, truncated_jpeg


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_shard(path: Path, samples: list[tuple[str, dict[str, bytes]]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for key, fields in samples:
            for field, data in fields.items():
                _add(tar, f"{key}.{field}", data)
    return path


def _sample(i: int, caption_json: bool = False) -> tuple[str, dict[str, bytes]]:
    fields = {"png": encode(pixels(i)), "cls": str(i % 3).encode()}
    if caption_json:
        fields["json"] = json.dumps({"caption": f"  caption {i} ", "w": 4}).encode()
    else:
        fields["txt"] = f"caption {i}\n".encode()
    return f"part/{i:06d}", fields


def _shards(folder: Path, counts: list[int]) -> list[Path]:
    paths, i = [], 0
    for s, n in enumerate(counts):
        samples = [_sample(i + k, caption_json=(i + k) % 2 == 1) for k in range(n)]
        paths.append(write_shard(folder / f"shard-{s:06d}.tar", samples))
        i += n
    return paths


def sequential_read(paths: list[Path]) -> list[tuple[np.ndarray, str]]:
    """Stream the shards in order, WebDataset-style: consecutive members with one key = a sample."""
    out: list[tuple[np.ndarray, str]] = []
    for path in paths:
        with tarfile.open(path, "r|") as tar:
            current: dict[str, bytes] = {}
            key = None
            for member in tar:
                stem, field = member.name.split(".", 1)
                if stem != key and current:
                    out.append(_decode(current))
                    current = {}
                key = stem
                current[field] = tar.extractfile(member).read()
            if current:
                out.append(_decode(current))
    return out


def _decode(fields: dict[str, bytes]) -> tuple[np.ndarray, str]:
    image = np.asarray(decode_image(fields["png"]))
    if "txt" in fields:
        return image, fields["txt"].decode().strip()
    return image, json.loads(fields["json"])["caption"].strip()


def test_brace_expansion():
    assert expand_braces("a-{000..003}.tar") == [f"a-{i:03d}.tar" for i in range(4)]
    assert expand_braces("{8..11}") == ["8", "9", "10", "11"]
    assert expand_braces("x{3..1}") == ["x3", "x2", "x1"]
    assert expand_braces("{a,b}-{0..1}") == ["a-0", "a-1", "b-0", "b-1"]
    assert expand_braces("{a,b{1,2}}c") == ["ac", "b1c", "b2c"]
    assert expand_braces("plain.tar") == ["plain.tar"] and expand_braces("{x}") == ["{x}"]
    with pytest.raises(ValueError, match="unbalanced"):
        expand_braces("a{0..2")


def test_random_access_equals_sequential_read_across_shards(tmp_path):
    paths = _shards(tmp_path / "data", [3, 4, 2])
    ds = WebDatasetReader(train_shards=str(tmp_path / "data" / "shard-{000000..000002}.tar"))
    train = ds.load("train")
    expected = sequential_read(paths)
    assert len(train) == len(expected) == 9
    for i in [8, 0, 5, 3, 3, 1, 7, 2, 4, 6]:  # any order, repeats
        sample = train[i]
        assert sample["image"].mode == "RGB"
        assert np.array_equal(np.asarray(sample["image"]), expected[i][0])
        assert sample["text"] == expected[i][1] == f"caption {i}"
    assert train.key(4).endswith("shard-000001.tar:part/000004")
    m = ds.modalities
    assert (m["image"].shape, m["image"].dtype, m["text"].dtype) == (
        (3, None, None),
        "image",
        "str",
    )


def test_splits_lists_and_pickled_copies(tmp_path):
    train = _shards(tmp_path / "train", [2, 2])
    test = _shards(tmp_path / "test", [3])
    ds = WebDatasetReader(train_shards=[str(p) for p in train], test_shards=str(test[0]))
    assert ds.splits == ("train", "test") and len(ds.load("test")) == 3
    split = ds.load("train")
    first = split[3]  # opens a file handle in this process
    copy = pickle.loads(pickle.dumps(split))  # what a spawned worker gets
    assert copy[3]["text"] == first["text"] and len(copy) == 4
    with pytest.raises(DataError, match="no split 'val'"):
        ds.load("val")


def test_incomplete_samples_are_skipped_when_indexing_or_raise(tmp_path):
    samples = [_sample(0), ("part/1", {"txt": b"no image"}), ("part/2", {"png": encode(pixels(2))})]
    path = write_shard(tmp_path / "s.tar", [*samples, _sample(3)])
    with pytest.warns(UserWarning) as record:
        ds = WebDatasetReader(shards=str(path))
    messages = [str(w.message) for w in record]
    assert any("part/1" in m and "no image" in m for m in messages)
    assert any("left 2 incomplete" in m for m in messages)
    assert [ds.load("train")[i]["text"] for i in range(2)] == ["caption 0", "caption 3"]
    with pytest.raises(DataError, match=r"sample 'part/1' in shard .*s.tar: no image"):
        WebDatasetReader(shards=str(path), on_error="raise")


def test_corrupt_image_in_a_shard_is_skipped_or_raises(tmp_path):
    bad = ("part/1", {"jpg": truncated_jpeg(), "txt": b"broken"})
    path = write_shard(tmp_path / "s.tar", [_sample(0), bad, _sample(2)])
    split = WebDatasetReader(shards=str(path)).load("train")
    with pytest.warns(UserWarning, match=r"s.tar:part/1.jpg"):
        assert split[1] is None
    assert split[0]["text"] == "caption 0" and split[2]["text"] == "caption 2"
    assert split.bad.count == 1
    strict = WebDatasetReader(shards=str(path), on_error="raise").load("train")
    with pytest.raises(DataError, match=r"cannot read .*s.tar:part/1.jpg"):
        strict[1]


def test_missing_compressed_and_truncated_shards(tmp_path):
    _shards(tmp_path, [2])
    with pytest.raises(DataError, match=r"train_shards: shard .*shard-000001.tar does not exist"):
        WebDatasetReader(train_shards=str(tmp_path / "shard-{000000..000002}.tar"))
    raw = (tmp_path / "shard-000000.tar").read_bytes()
    (tmp_path / "z.tar.gz").write_bytes(gzip.compress(raw))
    with pytest.raises(DataError, match="gzip-compressed"):
        WebDatasetReader(shards=str(tmp_path / "z.tar.gz"))
    with tarfile.open(tmp_path / "shard-000000.tar") as tar:
        last = tar.getmembers()[-1]  # sample 1's caption
    (tmp_path / "cut.tar").write_bytes(raw[: last.offset_data + last.size // 2])
    with pytest.warns(UserWarning, match="truncated"):
        ds = WebDatasetReader(shards=str(tmp_path / "cut.tar"))
    assert len(ds.load("train")) == 1 and ds.load("train")[0]["text"] == "caption 0"
    with pytest.raises(DataError, match="either `shards`"):
        WebDatasetReader()


def _pixel_sum(image) -> int:  # noqa: ANN001 - a picklable stand-in for an encoder's preprocess
    return int(np.asarray(image, dtype=np.int64).sum())


def test_shuffled_loading_in_worker_processes(tmp_path):
    _shards(tmp_path, [3, 3])
    split = WebDatasetReader(shards=str(tmp_path / "shard-{000000..000001}.tar")).load("train")
    split[0]  # the parent process opens a shard before forking workers
    loader = EpochLoader(
        TransformedDataset(split, {"image": _pixel_sum}),
        batch_size=2,
        shuffle=True,
        seed=1,
        num_workers=2,
        drop_last=False,
        pin_memory=False,
        field="data.train_split ('train')",
    )
    seen = [
        (t, int(s)) for b in loader.epoch(0) for t, s in zip(b["text"], b["image"], strict=True)
    ]
    expected = [(f"caption {i}", int(pixels(i).sum())) for i in range(6)]
    assert sorted(seen) == expected and [t for t, _ in seen] != [t for t, _ in expected]
    assert loader.skipped == 0

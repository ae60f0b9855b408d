"""image_text_manifest: CSV / TSV / JSONL manifests, relative paths, splits, extra columns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from modalforge.errors import DataError
from modalforge_datasets import ImageTextManifestDataset
from tests.plugins.modalforge_datasets.image_files import encode, pixels, write


def _images(folder: Path, n: int) -> list[np.ndarray]:
    arrays = [pixels(i) for i in range(n)]
    for i, a in enumerate(arrays):
        write(folder / "img" / f"{i}.png", encode(a))
    return arrays


def _csv(path: Path, rows: list[dict[str, str]], sep: str = ",") -> Path:
    header = list(rows[0])
    lines = [sep.join(header)] + [sep.join(r[c] for c in header) for r in rows]
    return write(path, ("\n".join(lines) + "\n").encode())


def _jsonl(path: Path, rows: list[dict]) -> Path:
    return write(path, "".join(json.dumps(r) + "\n" for r in rows).encode())


def test_csv_with_relative_paths_split_column_and_extra_columns(tmp_path):
    arrays = _images(tmp_path / "data", 4)
    rows = [
        {"image": f"img/{i}.png", "caption": f"picture {i}", "split": s, "source": f"s{i}"}
        for i, s in enumerate(["train", "test", "train", "test"])
    ]
    ds = ImageTextManifestDataset(path=str(_csv(tmp_path / "data" / "pairs.csv", rows)))
    assert ds.splits == ("train", "test") and ds.target is None
    image, text = ds.modalities["image"], ds.modalities["text"]
    assert (image.kind, image.shape, image.dtype) == ("image2d", (3, None, None), "image")
    assert (text.kind, text.shape, text.dtype) == ("text", (None,), "str")
    test = ds.load("test")
    assert len(test) == 2 and len(ds.load("train")) == 2
    sample = test[1]
    assert set(sample) == {"image", "text"} and sample["text"] == "picture 3"
    assert sample["image"].mode == "RGB" and np.array_equal(np.asarray(sample["image"]), arrays[3])
    assert test.extra(1) == {"split": "test", "source": "s3"}
    assert test.path(0) == str(tmp_path / "data" / "img" / "1.png")


def test_jsonl_per_split_files_keep_columns_and_image_root(tmp_path):
    arrays = _images(tmp_path / "store", 3)
    train = _jsonl(
        tmp_path / "lists" / "train.jsonl",
        [
            {"file": "img/0.png", "text": "zero", "id": 7, "meta": {"a": 1}},
            {"file": "img/1.png", "text": "one", "id": 8, "meta": None},
        ],
    )
    test = _jsonl(
        tmp_path / "lists" / "test.jsonl", [{"file": "img/2.png", "text": "two", "id": None}]
    )
    ds = ImageTextManifestDataset(
        train=str(train),
        test=str(test),
        image_column="file",
        caption_column="text",
        image_root=str(tmp_path / "store"),
        keep_columns=["id"],
        image_size=16,
    )
    assert ds.splits == ("train", "test") and ds.modalities["image"].shape == (3, 16, 16)
    first = ds.load("train")[0]
    assert first["text"] == "zero" and first["id"] == "7"
    assert np.array_equal(np.asarray(first["image"]), arrays[0])
    assert ds.load("train").extra(0) == {"id": "7", "meta": '{"a": 1}'}
    assert ds.load("train").extra(1) == {"id": "8", "meta": ""}
    assert ds.load("test")[0]["id"] == ""  # a missing value is an empty string, never None


def test_tsv_and_explicit_format_and_no_split_column(tmp_path):
    _images(tmp_path, 2)
    rows = [{"image": f"img/{i}.png", "caption": f"a, b {i}"} for i in range(2)]
    path = _csv(tmp_path / "pairs.txt", rows, sep="\t")
    with pytest.raises(DataError, match=r"pairs.txt[\s\S]*format"):
        ImageTextManifestDataset(path=str(path))
    ds = ImageTextManifestDataset(path=str(path), format="tsv")
    assert ds.splits == ("train",) and ds.load("train")[1]["text"] == "a, b 1"


def test_absolute_paths_are_kept(tmp_path):
    _images(tmp_path / "elsewhere", 1)
    absolute = str(tmp_path / "elsewhere" / "img" / "0.png")
    path = _jsonl(tmp_path / "m" / "pairs.jsonl", [{"image": absolute, "caption": "c"}])
    assert ImageTextManifestDataset(path=str(path)).load("train").path(0) == absolute


def test_missing_manifest_and_missing_columns_name_file_and_column(tmp_path):
    with pytest.raises(DataError, match=r"params.path: manifest .*nope.csv does not exist"):
        ImageTextManifestDataset(path=str(tmp_path / "nope.csv"))
    path = _csv(tmp_path / "m.csv", [{"img": "a.png", "caption": "x"}])
    with pytest.raises(
        DataError, match=r"image_column: manifest .*m.csv has no column 'image'"
    ) as e:
        ImageTextManifestDataset(path=str(path))
    assert "it has: img, caption" in str(e.value)
    with pytest.raises(DataError, match=r"caption_column: .*m.csv has no column 'text'"):
        ImageTextManifestDataset(path=str(path), image_column="img", caption_column="text")
    with pytest.raises(DataError, match=r"keep_columns: .*m.csv has no column 'id'"):
        ImageTextManifestDataset(path=str(path), image_column="img", keep_columns=["id"])


def test_malformed_manifests_and_params(tmp_path):
    bad = write(tmp_path / "bad.jsonl", b'{"image": "a.png", "caption": "x"}\n{"image": \n')
    with pytest.raises(DataError, match=r"bad.jsonl, line 2: not valid JSON"):
        ImageTextManifestDataset(path=str(bad))
    listed = write(tmp_path / "list.jsonl", b'["a.png", "x"]\n')
    with pytest.raises(DataError, match=r"list.jsonl, line 1: a JSON list"):
        ImageTextManifestDataset(path=str(listed))
    latin = write(tmp_path / "latin.csv", "image,caption\na.png,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="latin.csv is not UTF-8"):
        ImageTextManifestDataset(path=str(latin))
    empty_split = _csv(
        tmp_path / "s.csv",
        [
            {"image": "a", "caption": "x", "split": "train"},
            {"image": "b", "caption": "y", "split": ""},
        ],
    )
    with pytest.raises(DataError, match=r"s.csv, line 3: empty split column 'split'"):
        ImageTextManifestDataset(path=str(empty_split))
    with pytest.raises(DataError, match="either `path`"):
        ImageTextManifestDataset()
    with pytest.raises(DataError, match="not both"):
        ImageTextManifestDataset(path=str(bad), train=str(bad))
    with pytest.raises(DataError, match="keep_columns: 'image'"):
        ImageTextManifestDataset(path=str(bad), keep_columns=["image"])
    with pytest.raises(DataError, match="no split 'val'"):
        ImageTextManifestDataset(
            path=str(_csv(tmp_path / "ok.csv", [{"image": "a", "caption": "b"}]))
        ).load("val")


def test_image_files_of_any_mode_load_as_rgb(tmp_path):
    gray = np.array([[0, 100], [200, 255]], dtype=np.uint8)
    images = {
        "l.png": Image.fromarray(gray, mode="L"),
        "rgba.png": Image.fromarray(np.dstack([pixels(0)[:2, :2], np.full((2, 2), 255, np.uint8)])),
        "p.png": Image.fromarray(pixels(1)[:2, :2]).quantize(colors=3),
        "i16.png": Image.frombytes("I;16", (2, 2), (gray.astype("<u2") * 257).tobytes()),
        "cmyk.jpg": Image.new("CMYK", (2, 2), (0, 0, 0, 0)),
    }
    for name, image in images.items():
        image.save(tmp_path / name)
    path = _jsonl(tmp_path / "m.jsonl", [{"image": n, "caption": n} for n in images])
    split = ImageTextManifestDataset(path=str(path)).load("train")
    out = {split[i]["text"]: np.asarray(split[i]["image"]) for i in range(len(split))}
    assert all(a.shape == (2, 2, 3) and a.dtype == np.uint8 for a in out.values())
    assert np.array_equal(out["l.png"][..., 1], gray)
    assert np.array_equal(out["i16.png"][..., 0], gray)  # 16-bit scaled back to 8-bit
    assert np.array_equal(out["rgba.png"], pixels(0)[:2, :2])
    assert np.array_equal(out["p.png"], np.asarray(images["p.png"].convert("RGB")))
    assert (out["cmyk.jpg"] >= 250).all()  # no ink: white

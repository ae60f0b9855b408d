"""image_folder: the ImageFolder convention, split folders, class order, errors, metadata."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.datasets import ImageFolder

from modalforge.errors import DataError
from modalforge_datasets import ImageFolderDataset
from tests.plugins.modalforge_datasets.image_files import encode, pixels, truncated_jpeg, write


def _folder(root, layout: dict[str, int], prefix: str = "") -> None:
    seed = 0
    for cls, n in layout.items():
        for i in range(n):
            write(root / prefix / cls / f"p{i % 2}_img{i}.png", encode(pixels(seed)))
            seed += 1


def test_flat_layout_matches_torchvision_image_folder(tmp_path):
    _folder(tmp_path, {"cat": 3, "dog": 2, "emu": 2})
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "dog" / ".hidden.png").write_bytes(b"x")
    ds = ImageFolderDataset(root=str(tmp_path))
    ref = ImageFolder(str(tmp_path))
    ref.samples = [(p, y) for p, y in ref.samples if "/." not in p]  # we skip hidden files
    assert ds.splits == ("all",)
    assert ds.target.class_names == tuple(ref.classes) == ("cat", "dog", "emu")
    data = ds.load("all")
    assert [data.path(i) for i in range(len(data))] == [p for p, _ in ref.samples]
    np.testing.assert_array_equal(ds.labels("all"), [y for _, y in ref.samples])
    sample = data[0]
    np.testing.assert_array_equal(
        np.asarray(sample["image"]), np.asarray(ref.loader(ref.samples[0][0]))
    )
    assert sample["target"].dtype == torch.long and int(sample["target"]) == 0
    meta = ds.metadata("all")
    assert meta["class"][:3] == ["cat"] * 3 and meta["file"][0] == "p0_img0.png"
    assert meta["path"][0] == "cat/p0_img0.png"
    assert ds.modalities["image"].shape == (3, None, None) and ds.modalities["image"].is_raw


def test_split_folders_and_grayscale(tmp_path):
    _folder(tmp_path, {"a": 2, "b": 2}, "train")
    _folder(tmp_path, {"a": 1, "b": 1}, "valid")
    _folder(tmp_path, {"b": 1}, "test")  # a class missing from a split keeps its index
    ds = ImageFolderDataset(root=str(tmp_path), mode="L", image_size=8)
    assert ds.splits == ("test", "train", "val")
    assert ds.modalities["image"].shape == (1, 8, 8)
    assert ds.load("test")[0]["image"].mode == "L"
    np.testing.assert_array_equal(ds.labels("test"), [1])
    assert len(ds.load("train")) == 4


def test_declared_classes_fix_the_order_and_must_cover_the_folders(tmp_path):
    _folder(tmp_path, {"a": 1, "b": 1})
    ds = ImageFolderDataset(root=str(tmp_path), classes=("b", "a"))
    np.testing.assert_array_equal(ds.labels("all"), [1, 0])
    with pytest.raises(DataError, match=r"classes: folder\(s\) 'b' .* not among the declared"):
        ImageFolderDataset(root=str(tmp_path), classes=("a", "c"))


def test_errors_name_the_folder(tmp_path):
    with pytest.raises(DataError, match="root: .*nope is not a folder"):
        ImageFolderDataset(root=str(tmp_path / "nope"))
    _folder(tmp_path / "one", {"only": 2})
    with pytest.raises(DataError, match="has 1 class folder"):
        ImageFolderDataset(root=str(tmp_path / "one"))
    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "b").mkdir()
    with pytest.raises(DataError, match="holds no images with suffix"):
        ImageFolderDataset(root=str(tmp_path / "empty"))
    _folder(tmp_path / "flat", {"a": 1, "b": 1})
    with pytest.raises(DataError, match="layout: .* has no split folders"):
        ImageFolderDataset(root=str(tmp_path / "flat"), layout="splits")


def test_an_unreadable_image_is_skipped_or_raised(tmp_path):
    _folder(tmp_path, {"a": 1, "b": 1})
    write(tmp_path / "a" / "zz_broken.jpg", truncated_jpeg())
    ds = ImageFolderDataset(root=str(tmp_path))
    data = ds.load("all")
    broken = [i for i in range(len(data)) if data.path(i).endswith("zz_broken.jpg")][0]
    with pytest.warns(UserWarning, match="skipping unreadable sample .*zz_broken.jpg"):
        assert data[broken] is None
    strict = ImageFolderDataset(root=str(tmp_path), on_error="raise").load("all")
    with pytest.raises(DataError, match="cannot read .*zz_broken.jpg"):
        strict[broken]

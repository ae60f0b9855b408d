"""digits_halves: two views that reassemble into the digits image, on the digits split."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from modalforge_datasets import DigitsDataset, DigitsHalvesDataset


def _all(ds, split):
    return next(iter(DataLoader(ds.load(split), batch_size=10_000)))


@pytest.mark.parametrize("image_size", [8, 16])
def test_halves_reassemble_into_the_digits_image(image_size):
    halves, digits = (
        DigitsHalvesDataset(image_size=image_size),
        DigitsDataset(image_size=image_size),
    )
    for split in ("train", "test"):
        h, d = _all(halves, split), _all(digits, split)
        assert torch.equal(torch.cat([h["top"], h["bottom"]], dim=2), d["image"])
        assert torch.equal(h["target"], d["target"])


def test_split_is_the_digits_split():
    for kw in ({}, {"test_fraction": 0.3, "split_seed": 4}):
        halves, digits = DigitsHalvesDataset(**kw), DigitsDataset(**kw)
        assert np.array_equal(halves.test_indices, digits.test_indices)
        assert np.array_equal(halves.train_indices, digits.train_indices)
    assert DigitsHalvesDataset().test_indices[:10].tolist() == [1, 3, 4, 6, 11, 13, 14, 21, 29, 40]


def test_shapes_dtypes_and_target():
    ds = DigitsHalvesDataset(image_size=16)
    assert {n: (str(m.kind), m.shape) for n, m in ds.modalities.items()} == {
        "top": ("image2d", (1, 8, 16)),
        "bottom": ("image2d", (1, 8, 16)),
    }
    batch = _all(ds, "test")
    assert batch["top"].shape == (359, 1, 8, 16) and batch["bottom"].shape == (359, 1, 8, 16)
    assert batch["top"].dtype == torch.float32 and batch["target"].dtype == torch.long
    assert ds.target.num_outputs == 10 and ds.target.class_names[3] == "three"
    assert ds.splits == ("train", "test")


def test_odd_image_size_is_rejected():
    with pytest.raises(ValueError, match="even"):
        DigitsHalvesDataset(image_size=9)

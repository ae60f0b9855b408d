"""The synthetic multimodal data set: declared modalities, learnable labels, masks, determinism."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from modalforge.errors import SpecError
from modalforge_datasets import SyntheticDataset

ALL = dict(image2d_size=8, volume_size=6, tabular_features=5, lowdim_features=3)


def _stack(ds, split):
    return next(iter(DataLoader(ds.load(split), batch_size=10_000)))


def test_samples_have_the_declared_modalities_and_shapes():
    ds = SyntheticDataset(num_samples=40, num_classes=4, **ALL)
    kinds = {n: str(m.kind) for n, m in ds.modalities.items()}
    assert kinds == {
        "image": "image2d",
        "volume": "volume3d",
        "tabular": "tabular",
        "lowdim": "lowdim",
    }
    batch = _stack(ds, "train")
    for name, m in ds.modalities.items():
        assert batch[name].shape[1:] == m.shape and batch[name].dtype == torch.float32
    assert ds.target.num_outputs == 4
    assert len(ds.load("train")) + len(ds.load("test")) == 40


def test_only_requested_modalities_exist():
    ds = SyntheticDataset(image2d_size=None, lowdim_features=7)
    assert list(ds.modalities) == ["lowdim"]
    with pytest.raises(SpecError, match="at least one modality"):
        SyntheticDataset(image2d_size=None)


@pytest.mark.parametrize("modality", ["image", "volume", "tabular", "lowdim"])
def test_label_is_recoverable_from_each_modality(modality):
    """A nearest-class-mean classifier fitted on train data is far above chance on test data."""
    ds = SyntheticDataset(num_samples=300, num_classes=3, seed=1, **ALL)
    train, test = _stack(ds, "train"), _stack(ds, "test")
    x_tr, x_te = train[modality].flatten(1), test[modality].flatten(1)
    means = torch.stack([x_tr[train["target"] == c].mean(0) for c in range(3)])
    pred = torch.cdist(x_te, means).argmin(1)
    assert (pred == test["target"]).float().mean() > 0.9


def test_same_seed_same_data():
    a = _stack(SyntheticDataset(seed=3, tabular_features=4), "train")
    b = _stack(SyntheticDataset(seed=3, tabular_features=4), "train")
    c = _stack(SyntheticDataset(seed=4, tabular_features=4), "train")
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["target"], b["target"])
    assert not torch.equal(a["tabular"], c["tabular"])


def test_missing_modalities_are_masked_and_zeroed():
    ds = SyntheticDataset(num_samples=200, missing_prob=0.5, tabular_features=4, lowdim_features=2)
    batch = _stack(ds, "train")
    masks = batch["masks"]
    assert masks["image"].all()  # the first modality is always present
    absent = ~masks["tabular"]
    assert 0 < absent.sum() < len(absent)
    assert torch.equal(batch["tabular"][absent], torch.zeros(int(absent.sum()), 4))

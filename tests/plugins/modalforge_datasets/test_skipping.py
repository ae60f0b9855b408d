"""Unreadable images in a manifest: skipped, counted and reported by the engine, or a DataError."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from modalforge.engine.data import EpochLoader, collate_dropping_none
from modalforge.errors import DataError
from modalforge.pipeline.build import TransformedDataset
from modalforge_datasets import ImageTextManifestDataset
from tests.plugins.modalforge_datasets.image_files import encode, pixels, truncated_jpeg, write


def _manifest(folder: Path, names: list[str]) -> Path:
    for name in names:
        if name.startswith("good"):
            write(folder / name, encode(pixels(int(name[4]))))
    write(folder / "trunc.jpg", truncated_jpeg())
    write(folder / "notes.png", b"these are notes, not pixels\n")
    lines = ["image,caption"] + [f"{n},caption of {n}" for n in names]
    return write(folder / "pairs.csv", ("\n".join(lines) + "\n").encode())


def _to_tensor(image) -> torch.Tensor:  # noqa: ANN001 - what an encoder's preprocess does
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)


def _loader(split, batch_size: int = 2, num_workers: int = 0) -> EpochLoader:
    return EpochLoader(
        TransformedDataset(split, {"image": _to_tensor}),
        batch_size=batch_size,
        shuffle=False,
        seed=0,
        num_workers=num_workers,
        drop_last=False,
        pin_memory=False,
        field="data.train_split ('train')",
    )


NAMES = ["good0.png", "trunc.jpg", "good1.png", "notes.png", "good2.png", "gone.png"]


def test_each_kind_of_bad_file_is_skipped_with_a_reason(tmp_path):
    split = ImageTextManifestDataset(path=str(_manifest(tmp_path, NAMES))).load("train")
    reasons = {}
    for i, name in enumerate(NAMES):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            split.bad.count = 0  # so each bad file warns
            sample = split[i]
        if name.startswith("good"):
            assert sample is not None and not caught
        else:
            assert sample is None and len(caught) == 1
            reasons[name] = str(caught[0].message)
            assert name in reasons[name] and f"line {i + 2} of manifest" in reasons[name]
    assert "no such file" in reasons["gone.png"]
    assert "UnidentifiedImageError" in reasons["notes.png"]
    assert "OSError" in reasons["trunc.jpg"]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_loader_drops_counts_and_reports_skipped_samples(tmp_path, num_workers):
    split = ImageTextManifestDataset(path=str(_manifest(tmp_path, NAMES))).load("train")
    loader = _loader(split, num_workers=num_workers)
    with pytest.warns(UserWarning) as record:
        batches = list(loader.epoch(0))
    assert [b["text"] for b in batches] == [[f"caption of good{i}.png"] for i in range(3)]
    assert all(b["image"].shape == (1, 3, 4, 4) for b in batches)
    torch.testing.assert_close(batches[2]["image"][0], _to_tensor(pixels(2)))
    assert loader.skipped == 3
    messages = [str(w.message) for w in record]
    assert any("skipped 3 unreadable samples in this pass" in m for m in messages)
    if num_workers == 0:  # worker processes print their own warnings to stderr
        assert any("trunc.jpg" in m for m in messages)
    list(loader.epoch(1))
    assert loader.skipped == 6  # a running count over passes


def test_a_batch_of_only_bad_samples_is_a_data_error(tmp_path):
    split = ImageTextManifestDataset(path=str(_manifest(tmp_path, ["trunc.jpg", "gone.png"])))
    loader = _loader(split.load("train"))
    with pytest.warns(UserWarning), pytest.raises(DataError, match="all 2 samples of a batch"):
        list(loader.epoch(0))


def test_raise_mode_names_the_file_and_the_fix(tmp_path):
    ds = ImageTextManifestDataset(path=str(_manifest(tmp_path, NAMES)), on_error="raise")
    split = ds.load("train")
    assert split[0] is not None
    for i, name in [(1, "trunc.jpg"), (3, "notes.png"), (5, "gone.png")]:
        with pytest.raises(DataError, match=rf"cannot read .*{name} \(line {i + 2}") as e:
            split[i]
        assert "on_error=skip" in str(e.value)
    with pytest.raises(DataError, match="trunc.jpg"):
        list(_loader(split).epoch(0))


def test_collate_keeps_default_behaviour_without_none():
    batch, dropped = collate_dropping_none([{"x": torch.ones(2)}, None, {"x": torch.zeros(2)}])
    assert dropped == 1 and torch.equal(batch["x"], torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
    assert collate_dropping_none([None]) == (None, 1)

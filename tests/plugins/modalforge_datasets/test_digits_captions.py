"""digits_captions: the digits' images and split, with deterministic template captions."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from modalforge_datasets import DigitsCaptionsDataset, DigitsDataset, zeroshot_templates
from modalforge_datasets.digits import CLASS_NAMES
from modalforge_datasets.digits_captions import TEMPLATES


def _pattern(template: str) -> re.Pattern:
    return re.compile("^" + re.escape(template).replace(r"\{\}", "(.+)") + "$")


def _parse(caption: str) -> set[str]:
    """Every word a template could have been filled with to give ``caption``."""
    return {m.group(1) for t in TEMPLATES if (m := _pattern(t).match(caption))}


def test_same_split_images_and_target_as_digits():
    captions, digits = DigitsCaptionsDataset(image_size=16), DigitsDataset(image_size=16)
    assert np.array_equal(captions.test_indices, digits.test_indices)
    assert np.array_equal(captions.train_indices, digits.train_indices)
    for split in ("train", "test"):
        a, b = captions.load(split), digits.load(split)
        assert len(a) == len(b)
        for i in (0, len(a) - 1):
            torch.testing.assert_close(a[i]["image"], b[i]["image"])
            assert int(a[i]["target"]) == int(b[i]["target"])
    other = DigitsCaptionsDataset(split_seed=3, test_fraction=0.3)
    assert np.array_equal(
        other.test_indices, DigitsDataset(split_seed=3, test_fraction=0.3).test_indices
    )


def test_modalities_target_and_zero_shot_attributes():
    ds = DigitsCaptionsDataset()
    image, text = ds.modalities["image"], ds.modalities["text"]
    assert (image.kind, image.shape, image.is_raw) == ("image2d", (1, 32, 32), False)
    assert (text.kind, text.shape, text.dtype, text.is_raw) == ("text", (None,), "str", True)
    assert ds.target.class_names == CLASS_NAMES == ds.class_names
    assert 8 <= len(ds.templates) <= 12 and zeroshot_templates() == list(ds.templates)
    assert all(t.count("{}") == 1 for t in ds.templates)
    batch = next(iter(DataLoader(ds.load("test"), batch_size=5)))
    assert batch["image"].shape == (5, 1, 32, 32) and batch["image"].max() <= 1.0
    assert isinstance(batch["text"], list) and len(batch["text"]) == 5


@pytest.mark.parametrize("numeral_prob", [0.0, 0.5])
def test_every_caption_is_a_template_filled_with_its_label(numeral_prob):
    ds = DigitsCaptionsDataset(image_size=8, numeral_prob=numeral_prob)
    test = ds.load("test")
    used, numerals = set(), 0
    for i in range(len(test)):
        sample = test[i]
        y = int(sample["target"])
        words = _parse(sample["text"])
        assert CLASS_NAMES[y] in words or str(y) in words, sample["text"]
        numerals += str(y) in words
        used.update(t for t in TEMPLATES if _pattern(t).match(sample["text"]))
    assert used == set(TEMPLATES)  # 359 draws use all ten templates
    if numeral_prob == 0.0:
        assert numerals == 0
    else:
        assert 0.35 < numerals / len(test) < 0.65


def test_captions_are_deterministic_and_seeded():
    a = DigitsCaptionsDataset(image_size=8).captions
    assert a == DigitsCaptionsDataset(image_size=8).captions
    b = DigitsCaptionsDataset(image_size=8, caption_seed=1).captions
    assert a != b and len(a) == len(b) == 1797
    # A split's captions are the full list's captions at the split's indices.
    ds = DigitsCaptionsDataset(image_size=8)
    test = ds.load("test")
    assert [test[i]["text"] for i in range(5)] == [a[j] for j in ds.test_indices[:5]]


def test_fixed_mode_uses_the_first_template():
    ds = DigitsCaptionsDataset(image_size=8, caption_mode="fixed")
    train = ds.load("train")
    for i in range(0, len(train), 97):
        y = int(train[i]["target"])
        assert train[i]["text"] == f"a photo of the digit {CLASS_NAMES[y]}."


def test_bad_params():
    with pytest.raises(ValueError, match="caption_mode"):
        DigitsCaptionsDataset(caption_mode="other")
    with pytest.raises(ValueError, match="numeral_prob"):
        DigitsCaptionsDataset(numeral_prob=2.0)

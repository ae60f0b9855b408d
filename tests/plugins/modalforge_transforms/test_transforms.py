"""Built-in transforms against scikit-learn and torchvision, and their parameter checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import StandardScaler
from torchvision.transforms import v2

from modalforge.errors import DataError
from modalforge.modality import Modality
from modalforge_transforms.image import (
    CenterCrop,
    ColorJitter,
    Normalize,
    RandomCrop,
    RandomResizedCrop,
    Resize,
)
from modalforge_transforms.tabular import Impute, Standardize
from modalforge_transforms.text import Lowercase, NormalizeWhitespace, SampleSentences, Truncate

TAB = Modality("clinical", "tabular", (3,), metadata={"features": ["age", "bmi", "sex=F"]})
IMG = Modality("image", "image2d", (1, 16, 16))
RAW = Modality("image", "image2d", (3, None, None), dtype="image")


def _table(seed=0, n=50):
    rng = np.random.default_rng(seed)
    x = np.stack([rng.normal(60, 10, n), rng.normal(25, 4, n), rng.integers(0, 2, n)], 1)
    x[rng.random((n, 3)) < 0.2] = np.nan
    return x


@pytest.mark.parametrize("strategy", ["mean", "median", "constant"])
def test_impute_matches_scikit_learn_with_indicators(strategy):
    train, test = _table(0), _table(1)
    ours = Impute(TAB, strategy=strategy, fill_value=-1.0, indicators=True)
    ours.fit(torch.tensor(r) for r in train)
    ref = SimpleImputer(strategy=strategy, fill_value=-1.0, add_indicator=True).fit(train)
    got = torch.stack([ours(torch.tensor(r, dtype=torch.float32)) for r in test]).numpy()
    want = ref.transform(test)  # sklearn marks only features missing in training: all are here
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert ours.output().shape == (6,)
    assert ours.output().metadata["features"][3:] == ["age_missing", "bmi_missing", "sex=F_missing"]


def test_standardize_matches_scikit_learn_and_skips_binary_features():
    train = _table(0)
    train = np.where(np.isnan(train), 0.0, train)
    ours = Standardize(TAB)
    ours.fit(torch.tensor(r) for r in train)
    ref = StandardScaler().fit(train[:, :2])
    got = torch.stack([ours(torch.tensor(r, dtype=torch.float32)) for r in train]).numpy()
    np.testing.assert_allclose(got[:, :2], ref.transform(train[:, :2]), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(got[:, 2], train[:, 2])  # the 0/1 column stays as it is
    every = Standardize(TAB, skip_binary=False)
    every.fit(torch.tensor(r) for r in train)
    assert (
        abs(torch.stack([every(torch.tensor(r)) for r in train])[:, 2].std(unbiased=False) - 1)
        < 1e-4
    )


def test_fitted_state_round_trips_and_is_required():
    fitted = Standardize(TAB)
    with pytest.raises(DataError, match="has not been fitted"):
        fitted(torch.zeros(3))
    fitted.fit(torch.tensor(r) for r in np.nan_to_num(_table()))
    restored = Standardize(TAB)
    restored.load_state_dict(fitted.state_dict())
    x = torch.tensor([61.0, 30.0, 1.0])
    torch.testing.assert_close(restored(x), fitted(x))
    with pytest.raises(DataError, match="statistics for 2 features, but modality"):
        Standardize(TAB).load_state_dict({"mean": [0, 0], "std": [1, 1]})


def test_image_steps_are_torchvisions_and_reproducible():
    x = torch.rand(1, 16, 16)
    torch.manual_seed(3)
    ours = RandomResizedCrop(IMG, scale=(0.5, 1.0))(x)
    torch.manual_seed(3)
    ref = v2.RandomResizedCrop((16, 16), scale=(0.5, 1.0))(x)
    torch.testing.assert_close(ours, ref)
    torch.manual_seed(4)
    shifted = RandomCrop(IMG, padding=2)(x)
    assert shifted.shape == x.shape
    torch.manual_seed(4)
    torch.testing.assert_close(shifted, v2.RandomCrop((16, 16), padding=2)(x))
    torch.testing.assert_close(Normalize(IMG, (0.5,), (0.25,))(x), (x - 0.5) / 0.25)


def test_image_steps_take_pil_images_of_any_size():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), np.uint8))
    assert RandomCrop(RAW, padding=3)(image).size == (30, 20)
    assert RandomResizedCrop(RAW, size=12)(image).size == (12, 12)
    assert ColorJitter(RAW, brightness=0.3, hue=0.1)(image).size == (30, 20)
    assert Resize(RAW, 8).output().shape == (3, 8, 8)
    assert CenterCrop(RAW, 10)(image).size == (10, 10)


def test_image_parameter_checks():
    image = Image.new("RGB", (30, 20))
    assert RandomResizedCrop(RAW)(image).size == (30, 20)  # unknown size: each image's own
    with pytest.raises(ValueError, match="would change"):
        RandomResizedCrop(IMG, size=8)
    with pytest.raises(ValueError, match="hue must be in"):
        ColorJitter(IMG, hue=0.9)
    with pytest.raises(ValueError, match="2 values for the 1 channels"):
        Normalize(IMG, (0.5, 0.5), (1.0,))


def test_text_steps():
    text = Modality("report", "text", (None,), dtype="str")
    assert Lowercase(text)("Left LOWER lobe") == "left lower lobe"
    assert NormalizeWhitespace(text)("  a\n\tb   c ") == "a b c"
    assert Truncate(text, max_words=3)("one two three four") == "one two three"
    assert Truncate(text, max_chars=5)("abcdefgh") == "abcde"
    with pytest.raises(ValueError, match="set max_words, max_chars or both"):
        Truncate(text)


REPORT = "Lesion in the left lobe. No lesion in the right lobe! Two lesions? Bright; large."


def test_sample_sentences_keeps_order_and_counts():
    text = Modality("report", "text", (None,), dtype="str")
    sentences = ["Lesion in the left lobe.", "No lesion in the right lobe!", "Two lesions?"]
    sentences += ["Bright;", "large."]
    torch.manual_seed(0)
    step = SampleSentences(text, min_count=2, max_count=3)
    seen_counts, seen_subsets = set(), set()
    for _ in range(200):
        kept = step(REPORT).split(" ")
        picked = [s for s in sentences if s in " ".join(kept)]
        assert " ".join(picked) == " ".join(kept)  # whole sentences, in the report's order
        seen_counts.add(len(picked))
        seen_subsets.add(tuple(picked))
    assert seen_counts == {2, 3}
    assert len(seen_subsets) == 10 + 10  # every 2- and 3-subset of 5 sentences occurs
    torch.manual_seed(1)
    first = [step(REPORT) for _ in range(5)]
    torch.manual_seed(1)
    assert [step(REPORT) for _ in range(5)] == first  # seeded by torch's generator
    assert SampleSentences(text, min_count=1, max_count=1)("One sentence only.") == (
        "One sentence only."
    )
    assert SampleSentences(text, min_count=9)(REPORT) == REPORT  # fewer sentences: all kept
    with pytest.raises(ValueError, match="min_count must be at least 1"):
        SampleSentences(text, min_count=0)
    with pytest.raises(ValueError, match="max_count"):
        SampleSentences(text, min_count=3, max_count=2)

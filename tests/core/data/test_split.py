"""``data.split``: parts by fraction, groups never cross parts, class shares kept, k-fold."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import StratifiedGroupKFold
from torch.utils.data import Dataset

from modalforge.contracts import DatasetReader, Target, TargetKind
from modalforge.data.split import SplitReader, check_classes_in, divide
from modalforge.errors import DataError, SpecError
from modalforge.modality import Modality
from modalforge.spec.data import SplitSpec


class Rows(Dataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        return {"x": i}


class Table(DatasetReader):
    """A reader of ``n`` samples with labels and a group column, counting sample reads."""

    def __init__(self, labels, groups=None, splits=("all",), kind=TargetKind.MULTICLASS):
        self._labels = np.asarray(labels)
        self._groups = groups
        self._splits = splits
        self.kind = kind

    @property
    def modalities(self):
        return {"x": Modality("x", "tabular", (1,))}

    @property
    def target(self):
        k = int(self._labels.max()) + 1
        return Target(self.kind, k if self.kind != TargetKind.REGRESSION else 1)

    @property
    def splits(self):
        return self._splits

    def load(self, split):
        return Rows(len(self._labels))

    def labels(self, split):
        return self._labels

    def metadata(self, split):
        return {} if self._groups is None else {"patient": list(self._groups)}


def make(n_groups=60, seed=0, classes=3):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 9, n_groups)
    groups = np.repeat([f"p{g:03d}" for g in range(n_groups)], sizes)
    # each patient mostly one class, as in real cohorts
    base = rng.integers(0, classes, n_groups)
    labels = np.repeat(base, sizes)
    flip = rng.random(len(labels)) < 0.2
    labels[flip] = rng.integers(0, classes, flip.sum())
    return labels, groups


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("stratify", [True, False])
def test_no_group_crosses_parts_and_every_sample_is_in_one(seed, stratify):
    labels, groups = make(seed=seed)
    spec = SplitSpec(
        fractions={"train": 0.7, "val": 0.1, "test": 0.2},
        group="patient",
        stratify=stratify,
        seed=seed,
    )
    parts = SplitReader(Table(labels, groups), spec).indices
    everything = np.concatenate(list(parts.values()))
    assert sorted(everything.tolist()) == list(range(len(labels)))  # a partition
    owner = {}
    for part, idx in parts.items():
        for g in set(groups[idx]):
            assert owner.setdefault(g, part) == part, f"group {g} in {owner[g]} and {part}"
    n = len(labels)
    for part, share in spec.fractions.items():  # whole groups: near, not exact
        assert abs(len(parts[part]) / n - share) < 0.06


def test_grouped_stratification_keeps_class_shares_closer_than_without():
    labels, groups = make(n_groups=200, seed=5)
    overall = np.bincount(labels) / len(labels)

    def deviation(stratify):
        spec = SplitSpec(fractions={"train": 0.8, "test": 0.2}, group="patient", stratify=stratify)
        test = SplitReader(Table(labels, groups), spec).indices["test"]
        return np.abs(np.bincount(labels[test], minlength=3) / len(test) - overall).max()

    assert deviation(True) < 0.02
    assert deviation(True) < deviation(False)


def test_ungrouped_parts_get_exact_shares_per_class():
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    parts = divide(np.arange(100), {"train": 0.6, "val": 0.2, "test": 0.2}, labels, None, 3)
    for part, share in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
        counts = np.bincount(labels[parts[part]], minlength=3)
        np.testing.assert_array_equal(counts, np.round(np.array([50, 30, 20]) * share))


def test_split_depends_only_on_seed_and_data():
    labels, groups = make()
    spec = SplitSpec(group="patient", seed=7)
    a = SplitReader(Table(labels, groups), spec).indices
    b = SplitReader(Table(labels, groups), spec).indices
    c = SplitReader(Table(labels, groups), SplitSpec(group="patient", seed=8)).indices
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["test"], c["test"])


@pytest.mark.parametrize("group", [None, "patient"])
def test_folds_hold_out_every_sample_exactly_once(group):
    labels, groups = make(n_groups=50)
    held = []
    for fold in range(5):
        spec = SplitSpec(folds=5, fold=fold, group=group, seed=1)
        parts = SplitReader(Table(labels, groups), spec).indices
        assert set(parts) == {"train", "test"}
        assert not set(parts["train"]) & set(parts["test"])
        if group:
            assert not set(groups[parts["train"]]) & set(groups[parts["test"]])
        held.append(parts["test"])
    np.testing.assert_array_equal(np.sort(np.concatenate(held)), np.arange(len(labels)))


def test_grouped_stratified_folds_are_scikit_learns():
    labels, groups = make(n_groups=40)
    ids = np.unique(groups, return_inverse=True)[1]
    ref = list(StratifiedGroupKFold(4, shuffle=True, random_state=3).split(labels, labels, ids))
    for fold in range(4):
        spec = SplitSpec(folds=4, fold=fold, group="patient", seed=3)
        parts = SplitReader(Table(labels, groups), spec).indices
        np.testing.assert_array_equal(parts["test"], np.sort(ref[fold][1]))


def test_folds_with_a_validation_part_carved_from_the_rest():
    labels, groups = make(n_groups=50)
    spec = SplitSpec(
        fractions={"train": 0.7, "val": 0.1, "test": 0.2}, folds=5, fold=2, group="patient"
    )
    parts = SplitReader(Table(labels, groups), spec).indices
    rest = len(labels) - len(parts["test"])
    assert abs(len(parts["val"]) / rest - 0.125) < 0.06  # val : train = 1 : 7 of the rest
    owners = [set(groups[parts[p]]) for p in parts]
    assert (
        not (owners[0] & owners[1]) and not (owners[0] & owners[2]) and not (owners[1] & owners[2])
    )


def test_group_pattern_takes_the_first_capture_group():
    files = [f"p{i // 3:02d}_scan{i % 3}.png" for i in range(60)]
    labels = np.arange(60) % 2
    reader = Table(labels, files)
    spec = SplitSpec(group="patient", group_pattern=r"^(p\d+)_", stratify=False)
    parts = SplitReader(reader, spec).indices
    patients = {p: {f[:3] for f in np.asarray(files)[idx]} for p, idx in parts.items()}
    assert not patients["train"] & patients["test"]
    with pytest.raises(DataError, match=r"does not match patient 'p00_scan0.png'.*sample 0"):
        SplitReader(reader, SplitSpec(group="patient", group_pattern=r"^x(\d)"))


def test_missing_group_column_names_the_field_and_the_columns():
    labels, groups = make()
    with pytest.raises(
        SpecError,
        match=r"data.split.group: .*no per-sample column 'subject'.*"
        r"it has: patient",
    ):
        SplitReader(Table(labels, groups), SplitSpec(group="subject"), name="mine")


def test_other_splits_stay_and_a_name_clash_is_refused():
    labels, _ = make()
    reader = Table(labels, splits=("train", "test"))
    with pytest.raises(SpecError, match="has 2 splits .*say which to divide"):
        SplitReader(reader, SplitSpec())
    with pytest.raises(SpecError, match="part 'test' is also a split"):
        SplitReader(reader, SplitSpec(source="train"))
    split = SplitReader(reader, SplitSpec(source="train", fractions={"fit": 0.9, "val": 0.1}))
    assert split.splits == ("fit", "val", "test")
    assert len(split.load("fit")) + len(split.load("val")) == len(labels)


def test_a_part_left_empty_and_impossible_stratification_are_errors():
    labels = np.array([0, 1] * 5)
    with pytest.raises(DataError, match="fractions.val: the part gets no samples out of 10"):
        SplitReader(Table(labels), SplitSpec(fractions={"train": 0.97, "val": 0.03}))
    reg = Table(np.zeros(10, int), kind=TargetKind.REGRESSION)
    with pytest.raises(SpecError, match="stratify: stratification needs class labels"):
        SplitReader(reg, SplitSpec(stratify=True))
    assert len(SplitReader(reg, SplitSpec()).load("test")) == 2  # auto: not stratified


def test_a_class_absent_from_training_is_an_error():
    labels = np.array([0] * 10 + [1] * 10 + [2] * 2)
    groups = [f"g{i}" for i in range(20)] + ["rare", "rare"]
    reader = SplitReader(
        Table(labels, groups), SplitSpec(group="patient", fractions={"train": 0.5, "test": 0.5})
    )
    train = reader.indices["train"]
    if 2 in labels[train]:  # the rare group landed in training: move it out to test the check
        reader.indices = {"train": reader.indices["test"], "test": train}
    with pytest.raises(DataError, match=r"data.train_split: split 'train' has no sample of class"):
        check_classes_in(reader, "train", "data.train_split")


def test_spec_validation_of_fractions_and_folds():
    with pytest.raises(ValueError, match="sum to 1"):
        SplitSpec(fractions={"train": 0.8, "test": 0.3})
    with pytest.raises(ValueError, match="positive"):
        SplitSpec(fractions={"train": 1.0, "test": 0.0})
    with pytest.raises(ValueError, match="`fold` must be from 0 to 2"):
        SplitSpec(folds=3, fold=3)
    with pytest.raises(ValueError, match="must name the held-out part 'test'"):
        SplitSpec(folds=3, fractions={"train": 0.9, "val": 0.1})
    with pytest.raises(ValueError, match="not a valid regular expression"):
        SplitSpec(group="g", group_pattern="(")

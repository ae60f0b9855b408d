"""manifest: modalities from column loaders, the three target kinds, path policy, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from modalforge.errors import DataError, SpecError, UnknownComponentError
from modalforge.plugin import get_registry
from modalforge_datasets import ManifestDataset
from tests.plugins.modalforge_datasets.image_files import encode, pixels, truncated_jpeg, write

ROWS = [
    # image, report, age, sex, label, findings, patient, split
    ("img/0.png", "clear lungs", "61", "F", "normal", "", "p1", "train"),
    ("img/1.png", "opacity left", "", "M", "pneumonia", "opacity|effusion", "p1", "train"),
    ("img/2.png", "effusion", "47", "", "pneumonia", "effusion", "p2", "test"),
    ("img/3.png", "normal", "70.5", "M", "normal", "", "p3", "test"),
]
HEADER = ("image", "report", "age", "sex", "label", "findings", "patient", "split")


def _csv(folder, rows=ROWS, header=HEADER, name="m.csv"):
    for i in range(4):
        write(folder / "img" / f"{i}.png", encode(pixels(i)))
    lines = [",".join(header)] + [",".join(r) for r in rows]
    return str(write(folder / name, ("\n".join(lines) + "\n").encode()))


def _reader(path, **kw):
    kw.setdefault(
        "modalities",
        {
            "xray": {"loader": "image", "column": "image"},
            "report": {"loader": "text", "column": "report"},
            "clinical": {
                "loader": "tabular",
                "columns": ["age", "sex"],
                "params": {"categorical": ["sex"]},
            },
        },
    )
    kw.setdefault("target", {"kind": "multiclass", "column": "label"})
    return ManifestDataset(registry=get_registry(), path=path, **kw)


def test_modalities_target_splits_and_metadata(tmp_path):
    ds = _reader(_csv(tmp_path))
    assert ds.splits == ("train", "test")
    mods = ds.modalities
    assert mods["xray"].is_raw and mods["xray"].shape == (3, None, None)
    assert mods["report"].dtype == "str"
    assert mods["clinical"].shape == (3,)
    assert mods["clinical"].metadata["features"] == ["age", "sex=F", "sex=M"]
    assert ds.target.class_names == ("normal", "pneumonia")
    train = ds.load("train")
    first, second = train[0], train[1]
    np.testing.assert_array_equal(np.asarray(first["xray"]), pixels(0))
    assert first["report"] == "clear lungs" and int(first["target"]) == 0
    torch.testing.assert_close(first["clinical"], torch.tensor([61.0, 1.0, 0.0]))
    assert torch.isnan(second["clinical"][0]) and second["clinical"][1:].tolist() == [0.0, 1.0]
    test = ds.load("test")
    assert torch.isnan(test[0]["clinical"][1:]).all()  # missing category: the whole block
    np.testing.assert_array_equal(ds.labels("test"), [1, 0])
    assert ds.metadata("test")["patient"] == ["p2", "p3"]


def test_multilabel_from_a_joined_column_and_from_01_columns(tmp_path):
    ds = _reader(_csv(tmp_path), target={"kind": "multilabel", "column": "findings"})
    assert ds.target.class_names == ("effusion", "opacity")
    labels = torch.stack([ds.load(s)[i]["target"] for s in ("train", "test") for i in (0, 1)])
    torch.testing.assert_close(labels, torch.tensor([[0.0, 0], [1, 1], [1, 0], [0, 0]]))
    rows = [("img/0.png", "1", "0"), ("img/1.png", "0", "1")]
    path = _csv(tmp_path, rows, ("image", "cat", "dog"), "ml.csv")
    ds = _reader(
        path,
        modalities={"image": {"loader": "image", "column": "image"}},
        target={"kind": "multilabel", "columns": ["cat", "dog"]},
    )
    assert ds.splits == ("all",) and ds.target.num_outputs == 2
    torch.testing.assert_close(ds.load("all")[1]["target"], torch.tensor([0.0, 1.0]))


def test_regression_targets_one_or_several(tmp_path):
    with pytest.raises(DataError, match="line 2 .*target 'p1' in column 'patient' is not a number"):
        _reader(_csv(tmp_path), target={"kind": "regression", "column": "patient"})
    rows = [("img/0.png", "1.5", "2"), ("img/1.png", "-3", "0.25")]
    path = _csv(tmp_path, rows, ("image", "y1", "y2"), "reg.csv")
    mods = {"image": {"loader": "image", "column": "image"}}
    one = _reader(path, modalities=mods, target={"kind": "regression", "column": "y1"})
    assert one.target.num_outputs == 1 and float(one.load("all")[1]["target"]) == -3.0
    two = _reader(path, modalities=mods, target={"kind": "regression", "columns": ["y1", "y2"]})
    torch.testing.assert_close(two.load("all")[0]["target"], torch.tensor([1.5, 2.0]))


def test_jsonl_and_parquet_manifests_read_the_same(tmp_path):
    pa = pytest.importorskip("pyarrow")  # a dev dependency: installed by make test
    import pyarrow.parquet as pq

    _csv(tmp_path)
    records = [dict(zip(HEADER, r, strict=True)) for r in ROWS]
    for r in records:
        r["age"] = float(r["age"]) if r["age"] else None
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "m.parquet")
    ref = _reader(str(tmp_path / "m.csv"))
    for name in ("m.jsonl", "m.parquet"):
        ds = _reader(str(tmp_path / name))
        assert ds.splits == ref.splits
        for split in ds.splits:
            for i in range(len(ds.load(split))):
                a, b = ds.load(split)[i], ref.load(split)[i]
                torch.testing.assert_close(a["clinical"], b["clinical"], equal_nan=True)
                assert a["report"] == b["report"] and int(a["target"]) == int(b["target"])


def test_per_split_files(tmp_path):
    path = _csv(tmp_path)
    ds = _reader(None, train=path, test=path, split_column="none")
    assert ds.splits == ("train", "test") and len(ds.load("test")) == 4


# ---------------------------------------------------------------- bad input
def test_a_declared_column_missing_from_the_manifest(tmp_path):
    with pytest.raises(
        DataError, match=r"modalities.report.column: manifest .*m.csv has no column 'notes'"
    ):
        _reader(_csv(tmp_path), modalities={"report": {"loader": "text", "column": "notes"}})
    with pytest.raises(DataError, match=r"target.column: manifest .* has no column 'dx'"):
        _reader(_csv(tmp_path), target={"column": "dx"})


def test_a_label_outside_the_declared_classes_names_the_line(tmp_path):
    with pytest.raises(
        DataError,
        match=r"line 3 of manifest .*m.csv: label 'pneumonia' in column 'label' is not one of "
        r"the declared classes \(normal, covid\)",
    ):
        _reader(_csv(tmp_path), target={"column": "label", "classes": ["normal", "covid"]})


def test_a_path_escaping_the_manifest_folder_is_refused_unless_a_root_allows_it(tmp_path):
    outside = write(tmp_path / "elsewhere" / "x.png", encode(pixels(9)))
    rows = [("../elsewhere/x.png", "a"), ("img/0.png", "b")]
    data = tmp_path / "data"
    path = _csv(data, rows, ("image", "label"))
    mods = {"image": {"loader": "image", "column": "image"}}
    with pytest.raises(
        DataError,
        match=r"(?s)line 2 of manifest .*: path '../elsewhere/x.png' "
        r"points outside .*data.*fix: .*data.dataset.params.root",
    ):
        _reader(path, modalities=mods, target={"column": "label"})
    absolute = _csv(data, [(str(outside), "a"), ("img/0.png", "b")], ("image", "label"), "abs.csv")
    with pytest.raises(DataError, match="points outside"):  # an absolute path outside, too
        _reader(absolute, modalities=mods, target={"column": "label"})
    ds = _reader(path, modalities=mods, target={"column": "label"}, root=str(tmp_path))
    np.testing.assert_array_equal(np.asarray(ds.load("all")[0]["image"]), pixels(9))


def test_unknown_loader_close_matches_and_bad_params(tmp_path):
    with pytest.raises(UnknownComponentError, match=r"modalities.x.loader.*did you mean 'image'"):
        _reader(_csv(tmp_path), modalities={"x": {"loader": "imag", "column": "image"}})
    with pytest.raises(SpecError, match=r"modalities.x.params.mode"):
        _reader(
            _csv(tmp_path),
            modalities={"x": {"loader": "image", "column": "image", "params": {"mode": "CMYK"}}},
        )


def test_bad_cells_name_their_line(tmp_path):
    rows = [r[:2] + ("sixty",) + r[3:] for r in ROWS]
    with pytest.raises(
        DataError,
        match=r"(?s)line 2 of manifest .*'sixty' in column 'age' is not a "
        r"number.*fix: .*declare 'age' under .*clinical.params.categorical",
    ):
        _reader(_csv(tmp_path, rows))
    rows = [ROWS[0][:4] + ("",) + ROWS[0][5:], *ROWS[1:]]
    with pytest.raises(DataError, match="line 2 of manifest .*: no label in column 'label'"):
        _reader(_csv(tmp_path, rows))


def test_an_unreadable_image_is_skipped_and_named(tmp_path):
    path = _csv(tmp_path)
    write(tmp_path / "img" / "1.png", truncated_jpeg())
    train = _reader(path).load("train")
    with pytest.warns(UserWarning, match=r"skipping unreadable sample xray of line 3 of manifest"):
        assert train[1] is None
    assert train[0] is not None

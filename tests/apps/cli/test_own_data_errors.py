"""The issue's bad-input list, through the real CLI: one message naming the file, row or field
and the fix, exit code 2, no traceback."""

from __future__ import annotations

import pytest
import yaml

from modalforge.plugin import set_host
from modalforge_apps.cli import main
from tests.plugins.modalforge_datasets.image_files import encode, pixels, write


@pytest.fixture(autouse=True)
def real_plugins():
    set_host(None)
    yield
    set_host(None)


def _files(tmp_path):
    rows = ["image,label,patient,age"]
    for i in range(12):
        write(tmp_path / "img" / f"{i}.png", encode(pixels(i)))
        rows.append(f"img/{i}.png,{'cat' if i % 3 else 'dog'},p{i // 2},{40 + i}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")


def _spec(tmp_path, **change):
    spec = {
        "name": "own",
        "data": {
            "dataset": {
                "name": "manifest",
                "params": {
                    "path": str(tmp_path / "m.csv"),
                    "modalities": {
                        "image": {"loader": "image", "column": "image"},
                        "clinical": {"loader": "tabular", "columns": ["age"]},
                    },
                    "target": {"column": "label"},
                },
            },
            "split": {"fractions": {"train": 0.75, "test": 0.25}, "group": "patient"},
        },
        "model": {
            "encoders": {
                "image": {"name": "timm", "params": {"model_name": "resnet10t"}},
                "clinical": "mlp",
            },
            "fusion": "concat",
            "head": "classification",
        },
        "loss": "cross_entropy",
    }
    for path, value in change.items():
        *parents, last = path.split("__")
        node = spec
        for p in parents:
            node = node[p]
        node[last] = value
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


CASES = {
    "missing column": (
        {"data__dataset__params__modalities__clinical__columns": ["age", "weight"]},
        "data.dataset.params.modalities.clinical.columns: manifest",
        "has no column 'weight'",
    ),
    "label outside classes": (
        {"data__dataset__params__target__classes": ["cat", "bird"]},
        "label 'dog' in column 'label' is not one of the declared classes (cat, bird)",
        "fix: add it to data.dataset.params.target.classes",
    ),
    "path escaping the root": (
        {"data__dataset__params__modalities__image__column": "label"},  # set below
        "points outside",
        "data.dataset.params.root",
    ),
    "unknown transform": (
        {"data__transforms": {"train": {"image": ["random_flip"]}}},
        "data.transforms.train.image.0.name: no transform named 'random_flip'",
        "did you mean",
    ),
    "transform parameter of the wrong type": (
        {
            "data__transforms": {
                "train": {"image": [{"name": "rotation", "params": {"degrees": [1, 2, 3]}}]}
            }
        },
        "data.transforms.train.image.0.params.degrees",
        "fix: see `modalforge components transform rotation`",
    ),
    "missing group column": (
        {"data__split": {"group": "subject"}},
        "data.split.group: data set 'manifest' has no per-sample column 'subject'",
        "it has: image, label, patient, age",
    ),
    "class absent from training": (
        {
            "data__split": {"fractions": {"train": 0.5, "test": 0.5}, "stratify": False, "seed": 1},
            "data__dataset__params__target__classes": ["cat", "dog", "emu"],
        },
        "data.train_split: split 'train' has no sample of class 'emu'",
        "fix: add samples of those classes",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_one_message(case, tmp_path, capsys):
    _files(tmp_path)
    change, *expected = CASES[case]
    if case == "path escaping the root":
        (tmp_path / "m.csv").write_text(
            "image,label,patient,age\n../x.png,cat,p1,3\nimg/0.png,dog,p2,4\n"
        )
        change = {}
    assert main(["check", _spec(tmp_path, **change)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    for text in expected:
        assert text in err, err

"""The tensor_file reader: .npz and .safetensors, splits, and errors that name file and field."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modalforge.errors import DataError
from modalforge_datasets import TensorFileDataset


def _arrays(n: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "image": rng.random((n, 1, 6, 6), dtype=np.float32),
        "labs": rng.standard_normal((n, 4)),  # float64 on disk, float32 when read
        "tokens": rng.integers(0, 50, (n, 7)),
        "target": np.arange(n) % 3,
    }


KINDS = {"image": "image2d", "labs": "tabular", "tokens": "text"}


def test_npz_round_trip_with_fixed_split(tmp_path):
    arrays = _arrays()
    np.savez(tmp_path / "d.npz", **arrays)
    ds = TensorFileDataset(str(tmp_path / "d.npz"), KINDS, test_fraction=0.25)
    assert ds.splits == ("train", "test")
    assert {n: m.shape for n, m in ds.modalities.items()} == {
        "image": (1, 6, 6),
        "labs": (4,),
        "tokens": (7,),
    }
    assert ds.target.num_outputs == 3 and ds.target.kind == "multiclass"
    test = ds.load("test")
    assert len(test) + len(ds.load("train")) == 20 and len(test) == 6
    again = TensorFileDataset(str(tmp_path / "d.npz"), KINDS, test_fraction=0.25).load("test")
    for i in range(len(test)):
        assert torch.equal(test[i]["labs"], again[i]["labs"])
    s = ds.load("train")[0]
    assert s["labs"].dtype == torch.float32 and s["tokens"].dtype == torch.long
    assert s["target"].dtype == torch.long


def test_safetensors_with_separate_test_file_and_multilabel_target(tmp_path):
    from safetensors.numpy import save_file

    for name, seed in (("train", 0), ("test", 1)):
        arrays = _arrays(seed=seed)
        arrays["target"] = (np.random.default_rng(seed).random((20, 5)) > 0.5).astype(np.float32)
        save_file(
            {k: np.ascontiguousarray(v) for k, v in arrays.items()},
            str(tmp_path / f"{name}.safetensors"),
        )
    ds = TensorFileDataset(
        str(tmp_path / "train.safetensors"),
        {"labs": "tabular"},
        target_kind="multilabel",
        test_path=str(tmp_path / "test.safetensors"),
    )
    assert ds.target.kind == "multilabel" and ds.target.num_outputs == 5
    expected = torch.from_numpy(_arrays(seed=1)["labs"][0]).float()
    torch.testing.assert_close(ds.load("test")[0]["labs"], expected)


def test_unlabelled_data_without_split(tmp_path):
    arrays = _arrays()
    del arrays["target"]
    np.savez(tmp_path / "u.npz", **arrays)
    ds = TensorFileDataset(
        str(tmp_path / "u.npz"), {"image": "image2d"}, target_kind=None, test_fraction=0.0
    )
    assert ds.target is None and ds.splits == ("train",) and "target" not in ds.load("train")[0]


def test_missing_file_names_file_and_field(tmp_path):
    path = tmp_path / "absent.npz"
    with pytest.raises(DataError, match=r"data\.dataset\.params\.path.*absent\.npz"):
        TensorFileDataset(str(path), KINDS)


def test_missing_array_names_file_and_array(tmp_path):
    np.savez(tmp_path / "d.npz", **_arrays())
    with pytest.raises(DataError, match=r"d\.npz has no array 'ct'.*image, labs, tokens, target"):
        TensorFileDataset(str(tmp_path / "d.npz"), {"ct": "volume3d"})


def test_pickled_arrays_are_refused(tmp_path):
    arrays = _arrays()
    arrays["labs"] = np.array([{"evil": 1}] * 20, dtype=object)
    np.savez(tmp_path / "p.npz", **arrays)
    with pytest.raises(DataError, match="pickled"):
        TensorFileDataset(str(tmp_path / "p.npz"), KINDS)


def test_wrong_shape_for_kind_is_a_data_error(tmp_path):
    np.savez(tmp_path / "d.npz", **_arrays())
    with pytest.raises(DataError, match=r"array 'labs'.*volume3d"):
        TensorFileDataset(str(tmp_path / "d.npz"), {"labs": "volume3d"})


def test_spec_with_tensor_file_validates_kinds_and_builds(tmp_path):
    from modalforge.errors import SpecError
    from modalforge.pipeline import build_pipeline
    from modalforge.plugin import load_plugins
    from modalforge.spec import parse_spec

    np.savez(tmp_path / "d.npz", **_arrays())
    spec = {
        "name": "file",
        "data": {
            "dataset": {
                "name": "tensor_file",
                "params": {"path": str(tmp_path / "d.npz"), "modality_kinds": {"labs": "tabular"}},
            }
        },
        "model": {
            "encoders": {"labs": {"name": "mlp", "params": {"out_dim": 4}}},
            "head": "classification",
        },
        "loss": "cross_entropy",
    }
    registry = load_plugins(warn=False).registry
    pipe = build_pipeline(parse_spec(spec), registry)
    assert pipe.model.head.in_dim == 4 and pipe.dataset.target.num_outputs == 3
    spec["data"]["dataset"]["params"]["modality_kinds"] = {"labs": "spreadsheet"}
    with pytest.raises(SpecError, match=r"data\.dataset\.params\.modality_kinds\.labs"):
        build_pipeline(parse_spec(spec), registry)

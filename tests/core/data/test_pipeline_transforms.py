"""data.transforms through the pipeline and engine: phases, fitting on the training split only,
statistics stored in checkpoints and restored for evaluation and inference, and bad specs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import StandardScaler

from modalforge.engine import evaluate, train
from modalforge.errors import DataError, SpecError, UnknownComponentError
from modalforge.pipeline import build_pipeline, load_trained
from modalforge.plugin import get_registry, set_host
from modalforge.spec import parse_spec


@pytest.fixture(autouse=True)
def real_plugins():
    set_host(None)
    yield
    set_host(None)


def _manifest(folder, n=80, seed=0):
    rng = np.random.default_rng(seed)
    age = rng.normal(60, 10, n)
    bmi = rng.normal(25, 4, n)
    label = (age + 2 * bmi > 110).astype(int)
    lines = ["age,bmi,label,patient"]
    for i in range(n):
        a = "" if i % 9 == 0 else f"{age[i]:.3f}"
        lines.append(f"{a},{bmi[i]:.3f},{'yes' if label[i] else 'no'},p{i // 2}")
    path = folder / "cohort.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _spec(path, **data):
    spec = {
        "name": "tab",
        "data": {
            "dataset": {
                "name": "manifest",
                "params": {
                    "path": str(path),
                    "modalities": {"clinical": {"loader": "tabular", "columns": ["age", "bmi"]}},
                    "target": {"column": "label"},
                },
            },
            "split": {"fractions": {"train": 0.75, "test": 0.25}, "group": "patient"},
            "transforms": {"eval": {"clinical": ["impute", "standardize"]}},
            "batch_size": 16,
            **data,
        },
        "model": {
            "encoders": {"clinical": {"name": "mlp", "params": {"hidden_dims": [8], "out_dim": 8}}},
            "head": "classification",
        },
        "loss": "cross_entropy",
        "metrics": ["accuracy"],
        "train": {"epochs": 2, "progress": False, "tensorboard": False, "device": "cpu"},
    }
    return parse_spec(spec)


def _raw_rows(pipeline, split):
    data = pipeline.dataset.load(split)
    return np.stack([data[i]["clinical"].numpy() for i in range(len(data))]).astype(np.float64)


def test_statistics_come_from_the_training_split_only_and_match_scikit_learn(tmp_path):
    pipeline = build_pipeline(_spec(_manifest(tmp_path)), get_registry())
    assert pipeline.modalities["clinical"].shape == (4,)  # 2 features + 2 missing indicators
    assert pipeline.model.encoders["clinical"].modality.shape == (4,)
    pipeline.fit_transforms()
    train_rows, test_rows = _raw_rows(pipeline, "train"), _raw_rows(pipeline, "test")
    # scikit-learn adds indicators only for features missing in training (age), we for all
    imputer = SimpleImputer(strategy="median", add_indicator=True).fit(train_rows)
    scaler = StandardScaler().fit(imputer.transform(train_rows)[:, :2])
    ref = imputer.transform(test_rows)
    want = np.concatenate([scaler.transform(ref[:, :2]), ref[:, 2:], np.zeros((len(ref), 1))], 1)
    test = pipeline.load("test")
    got = np.stack([test[i]["clinical"].numpy() for i in range(len(test))])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    everything = np.concatenate([train_rows, test_rows])
    assert not np.allclose(
        pipeline.data_transforms.eval["clinical"][0].values[0], np.nanmedian(everything[:, 0])
    )  # not fitted on all rows


def test_stored_with_the_checkpoint_and_restored_for_eval_and_inference(tmp_path):
    spec = _spec(_manifest(tmp_path))
    pipeline = build_pipeline(spec, get_registry())
    result = train(pipeline, tmp_path / "run")
    state = json.loads((result.checkpoint / "state.json").read_text())["trainer"]["transforms"]
    assert set(state) == {"clinical.0", "clinical.1"}
    assert state["clinical.1"]["mean"] == pipeline.data_transforms.eval["clinical"][1].mean.tolist()

    fresh = build_pipeline(spec, get_registry())
    assert evaluate(fresh, tmp_path / "run")["accuracy"] == pytest.approx(
        result.metrics["accuracy"]
    )
    trained = load_trained(spec, tmp_path / "run", device="cpu")
    got = trained.pipeline.load("test")[0]["clinical"]
    torch.testing.assert_close(got, pipeline.load("test")[0]["clinical"])

    unfitted = build_pipeline(spec, get_registry())
    with pytest.raises(DataError, match="has not been fitted"):
        unfitted.load("test")[0]


def test_augmentation_runs_in_training_only(tmp_path):
    spec = parse_spec(
        {
            "name": "aug",
            "data": {
                "dataset": {"name": "digits", "params": {"image_size": 16}},
                "transforms": {
                    "train": {"image": [{"name": "random_crop", "params": {"padding": 3}}]},
                    "eval": {
                        "image": [{"name": "normalize", "params": {"mean": [0.5], "std": [0.5]}}]
                    },
                },
            },
            "model": {"encoders": {"image": {"name": "cnn"}}, "head": "classification"},
            "loss": "cross_entropy",
        }
    )
    pipeline = build_pipeline(spec, get_registry())
    raw = pipeline.dataset.load("test")[0]["image"]
    ev = pipeline.load("test")
    torch.testing.assert_close(ev[0]["image"], (raw - 0.5) / 0.5)
    torch.testing.assert_close(ev[0]["image"], ev[0]["image"])  # deterministic
    tr = pipeline.load("test", train=True)
    torch.manual_seed(0)
    shifted = [tr[0]["image"] for _ in range(8)]
    assert any(not torch.allclose(s, (raw - 0.5) / 0.5) for s in shifted)
    assert all(s.shape == raw.shape for s in shifted)


def _digits(transforms):
    return {
        "name": "bad",
        "data": {"dataset": {"name": "digits"}, "transforms": transforms},
        "model": {"encoders": {"image": {"name": "cnn"}}, "head": "classification"},
        "loss": "cross_entropy",
    }


@pytest.mark.parametrize(
    ("transforms", "error", "match"),
    [
        (
            {"train": {"image": ["horizontal_flipp"]}},
            UnknownComponentError,
            r"data.transforms.train.image.0.name: no transform named 'horizontal_flipp'; "
            r"did you mean 'horizontal_flip'",
        ),
        (
            {"train": {"image": [{"name": "rotation", "params": {"degrees": "lots"}}]}},
            SpecError,
            r"data.transforms.train.image.0.params.degrees: .*number",
        ),
        (
            {"train": {"image": ["lowercase"]}},
            SpecError,
            r"data.transforms.train.image.0: Lowercase reads text",
        ),
        ({"eval": {"image": ["standardize"]}}, SpecError, r"Standardize reads tabular"),
        (
            {"train": {"image": [{"name": "resize", "params": {"size": 4}}]}},
            SpecError,
            r"data.transforms.train.image: the augmentation turns image .* into image",
        ),
        (
            {"train": {"depth": ["horizontal_flip"]}},
            SpecError,
            r"data.transforms.train.depth: the data set has no modality 'depth'",
        ),
        (
            {"eval": {"image": [{"name": "rotation", "params": {"degrees": 5, "p": 1}}]}},
            SpecError,
            r"unknown field; transform 'rotation' accepts: degrees, fill",
        ),
    ],
)
def test_bad_transform_specs_name_the_field(transforms, error, match):
    with pytest.raises(error, match=match):
        build_pipeline(parse_spec(_digits(transforms)), get_registry())


def test_tensor_and_raw_steps_are_checked_against_the_modality(tmp_path):
    spec = parse_spec(_digits({}))
    assert build_pipeline(spec, get_registry())  # the base spec is fine
    from tests.plugins.modalforge_datasets.image_files import encode, pixels, write

    for cls in ("a", "b"):
        write(tmp_path / "imgs" / cls / "0.png", encode(pixels(0)))
    folder = {
        "name": "raw",
        "data": {
            "dataset": {"name": "image_folder", "params": {"root": str(tmp_path / "imgs")}},
            "train_split": "all",
            "eval_split": None,
            "transforms": {"eval": {"image": ["normalize"]}},
        },
        "model": {
            "encoders": {"image": {"name": "timm", "params": {"model_name": "resnet10t"}}},
            "head": "classification",
        },
        "loss": "cross_entropy",
    }
    with pytest.raises(SpecError, match=r"(?s)'normalize' works on tensors, .*raw image samples"):
        build_pipeline(parse_spec(folder), get_registry())


def test_fitted_step_in_the_train_list_and_unimputed_missing_values(tmp_path):
    path = _manifest(tmp_path)
    spec = _spec(path, transforms={"train": {"clinical": ["standardize"]}})
    with pytest.raises(
        SpecError,
        match=r"(?s)train.clinical.0: 'standardize' is fitted .*move it to "
        r"data.transforms.eval.clinical",
    ):
        build_pipeline(spec, get_registry())
    pipeline = build_pipeline(
        _spec(path, transforms={"eval": {"clinical": ["standardize"]}}), get_registry()
    )
    with pytest.raises(
        DataError,
        match=r"(?s)missing or non-finite values \(feature 'age'\).*"
        r"add an imputation step",
    ):
        train(pipeline, tmp_path / "run")

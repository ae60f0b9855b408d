"""A data set reader's ``state_dict()`` travels with every checkpoint and back to inference."""

from __future__ import annotations

import json

from modalforge.engine import train
from modalforge.pipeline import build_pipeline, load_trained
from modalforge.registry import Registrar
from modalforge.spec import parse_spec
from tests.core.toy import ToyData, toy_registry, toy_spec


class StatefulToy(ToyData):
    """Toy data whose reader learned a statistic from its training split."""

    def state_dict(self) -> dict:
        first = self.load("train")[0]["state"]
        return {"state_scale": [float(v) for v in first], "note": "fitted on train"}


def _spec(**data) -> dict:  # noqa: ANN003
    spec = toy_spec(train={"epochs": 1, "progress": False, "log_every_steps": 1})
    spec["data"] = {"dataset": "stateful", "batch_size": 8, **data}
    return spec


def _registry():  # noqa: ANN202
    registry = toy_registry()
    Registrar(registry, "stateful").dataset("stateful", StatefulToy)
    return registry


def test_reader_state_is_in_every_checkpoint_and_in_load_trained(tmp_path):
    registry = _registry()
    spec = parse_spec(_spec())
    pipeline = build_pipeline(spec, registry)
    result = train(pipeline, tmp_path / "run")
    expected = pipeline.dataset.state_dict()
    state = json.loads((result.checkpoint / "state.json").read_text())
    assert state["trainer"]["dataset"] == expected
    trained = load_trained(spec, tmp_path / "run", registry=registry, device="cpu")
    assert trained.dataset_state == expected


def test_state_passes_through_data_split_and_readers_without_state_store_none(tmp_path):
    registry = _registry()
    split = {"source": "train", "fractions": {"fit": 0.75, "val": 0.25}}
    spec = parse_spec(_spec(split=split, train_split="fit", eval_split="val"))
    pipeline = build_pipeline(spec, registry)
    assert pipeline.dataset.state_dict()["note"] == "fitted on train"  # through SplitReader
    plain = build_pipeline(parse_spec(toy_spec()), registry)
    result = train(plain, tmp_path / "plain")
    assert "dataset" not in json.loads((result.checkpoint / "state.json").read_text())["trainer"]
    assert (
        load_trained(
            parse_spec(toy_spec()), tmp_path / "plain", registry=registry, device="cpu"
        ).dataset_state
        == {}
    )

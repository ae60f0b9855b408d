"""Run hooks: early stopping, the csv logger, and a plugin's module-level hooks, called in order."""

import csv
import json
import types

import pytest

from modalforge.contracts import Metric
from modalforge.engine import train
from modalforge.engine.runtime import seed_everything
from modalforge.errors import SpecError
from modalforge.pipeline import build_pipeline
from modalforge.plugin import hookimpl, load_plugins, set_host
from modalforge.registry import Registrar
from modalforge.spec import parse_spec
from tests.core.engine.helpers import registry, spec_dict

STEPS_PER_EPOCH = 8  # 64 blobs in batches of 8


class Scripted(Metric):
    """Returns ``SCRIPT[k]`` as ``score`` at its k-th evaluation of the test (across pipelines,
    so that a resumed run continues the script): a metric that stops improving, exactly."""

    SCRIPT: list[float] = []
    calls = 0

    def reset(self) -> None:
        pass

    def update(self, outputs, batch) -> None:  # noqa: ANN001
        pass

    def compute(self) -> dict[str, float]:
        value = Scripted.SCRIPT[Scripted.calls]
        Scripted.calls += 1
        return {"score": value}


@pytest.fixture
def script():
    def set_script(values):
        Scripted.SCRIPT, Scripted.calls = list(values), 0

    yield set_script
    Scripted.SCRIPT, Scripted.calls = [], 0


def _pipeline(train_cfg, **sections):
    reg = registry()
    Registrar(reg, "callback-tests").metric("scripted", Scripted)
    seed_everything(0)
    data = spec_dict({"epochs": 10, **train_cfg}, metrics=["scripted"], **sections)
    return build_pipeline(parse_spec(data), reg)


def _steps(run):
    return sorted(p.name for p in (run / "checkpoints").glob("step_*"))


@pytest.mark.parametrize(
    ("values", "params", "stop_epoch"),
    [
        ([1.0, 0.5, 0.6, 0.7, 0.1], {"patience": 2}, 4),
        ([1.0, 0.5, 0.6, 0.7, 0.1], {"patience": 3}, 9),  # 0.1, 0.0 improve; then 0.0 × 3
        ([1.0, 0.9, 0.895, 0.89, 0.5], {"patience": 2, "min_delta": 0.02}, 4),
        ([1.0, 0.9, 0.895, 0.89, 0.5, 0.6, 0.7], {"patience": 2, "min_delta": 0.001}, 7),
    ],
)
def test_early_stopping_stops_at_the_exact_step(tmp_path, script, values, params, stop_epoch):
    script(values + [0.0] * 10)
    cb = {"name": "early_stopping", "params": {"metric": "score", "mode": "min", **params}}
    result = train(_pipeline({"callbacks": [cb]}), tmp_path)
    step = stop_epoch * STEPS_PER_EPOCH
    assert result.steps == step and result.epochs == stop_epoch
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["stopped"]["by"] == "early_stopping"
    assert saved["stopped"]["step"] == step and saved["stopped"]["epoch"] == stop_epoch
    assert f"in {params['patience']} evaluation(s)" in saved["stopped"]["reason"]
    assert saved["steps"] == step and _steps(tmp_path)[-1] == f"step_{step:08d}"
    assert Scripted.calls == stop_epoch  # one evaluation per epoch, none after the stop


def test_stopping_writes_a_final_checkpoint_and_keeps_the_best(tmp_path, script):
    script([1.0, 0.5, 0.6, 0.7])
    cfg = {
        "callbacks": [{"name": "early_stopping", "params": {"patience": 2}}],
        "best_metric": "score",  # the callback follows train.best_metric and best_mode
        "best_mode": "min",
        "keep_checkpoints": 1,
    }
    result = train(_pipeline(cfg), tmp_path)
    assert result.steps == 32 and result.best["step"] == 16 and result.best["value"] == 0.5
    # epoch 2 (the best) and epoch 4 (the stop); epochs 1 and 3 were rotated away
    assert _steps(tmp_path) == ["step_00000016", "step_00000032"]
    assert result.best_checkpoint.name == "step_00000016"
    assert "best 0.5 at step 16" in result.stopped["reason"]


def test_a_resumed_run_continues_the_early_stopping_counters(tmp_path, script):
    script([1.0, 0.5, 0.6, 0.7, 0.65])
    cb = {"name": "early_stopping", "params": {"metric": "score", "mode": "min", "patience": 2}}
    first = train(_pipeline({"callbacks": [cb], "max_steps": 24}), tmp_path)
    assert first.steps == 24 and first.stopped is None  # 1.0, 0.5 (best), 0.6: one bad
    state = json.loads((first.checkpoint / "state.json").read_text())
    assert state["trainer"]["callbacks"]["train.callbacks.0"] == {
        "best": 0.5,
        "best_step": 16,
        "bad": 1,
    }
    resumed = train(_pipeline({"callbacks": [cb]}), tmp_path, resume=tmp_path)
    assert resumed.steps == 32 and resumed.stopped["step"] == 32  # 0.7: the second bad one


def test_early_stopping_needs_an_eval_split_and_a_known_metric(tmp_path, script):
    script([1.0] * 5)
    cb = {"name": "early_stopping", "params": {"metric": "acc"}}
    with pytest.raises(SpecError, match="'acc' is not among the evaluation results"):
        train(_pipeline({"callbacks": [cb]}), tmp_path / "a")
    data = {"dataset": "blobs", "batch_size": 8, "eval_split": None}
    with pytest.raises(SpecError, match="data.eval_split is null"):
        train(_pipeline({"callbacks": ["early_stopping"]}, data=data), tmp_path / "b")


# ---------------------------------------------------------------- csv logger
def _jsonl(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def _csv_equals_jsonl(run):
    records = _jsonl(run)
    for split in ("train", "test"):
        with open(run / f"metrics_{split}.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        mine = [dict(r) for r in records if r["split"] == split]
        assert len(rows) == len(mine) > 0
        for row, rec in zip(rows, mine, strict=True):
            assert int(row.pop("step")) == rec.pop("step")
            assert int(row.pop("epoch")) == rec.pop("epoch")
            rec.pop("split")
            assert {k: float(v) for k, v in row.items() if v != ""} == rec


def test_csv_logger_writes_the_jsonl_records_per_split(tmp_path, script):
    script([0.1 * i for i in range(10)])
    train(_pipeline({"epochs": 3, "loggers": ["csv"], "clip_grad_norm": 1.0}), tmp_path)
    _csv_equals_jsonl(tmp_path)
    header = (tmp_path / "metrics_train.csv").read_text().splitlines()[0]
    assert header == "step,epoch,loss,loss_ce,grad_norm,lr,time,elapsed"


def test_csv_logger_drops_rows_past_the_checkpoint_on_resume(tmp_path, script):
    script([0.1 * i for i in range(10)])
    const = {"loggers": ["csv"], "min_lr_ratio": 1.0, "log_every_steps": 3}
    train(_pipeline({**const, "max_steps": 11}), tmp_path)
    train(_pipeline({**const, "max_steps": 20}), tmp_path, resume=tmp_path)
    _csv_equals_jsonl(tmp_path)
    steps = [int(r["step"]) for r in csv.DictReader(open(tmp_path / "metrics_train.csv"))]
    assert steps == [3, 6, 8, 9, 11, 12, 15, 16, 18, 20]  # log intervals and epoch ends, once


# ---------------------------------------------------------------- a plugin's run hooks
def _recording_plugin(calls, stop_at=None):
    mine = types.ModuleType("mine_plugin")

    @hookimpl
    def register_components(registry):  # noqa: ANN001
        pass

    @hookimpl
    def on_train_start(run):  # noqa: ANN001
        calls.append(("start", run.step, run.epoch, run.is_main, run.out_dir))

    @hookimpl
    def after_step(run, step):  # noqa: ANN001
        calls.append(("step", step, run.step))
        if step == stop_at:
            run.request_stop("enough", by="mine")

    @hookimpl
    def log_metrics(step, split, values):  # a subset of the hook's arguments
        calls.append(("log", step, split, dict(values)))

    @hookimpl
    def after_evaluation(run, split, metrics):  # noqa: ANN001
        calls.append(("eval", run.step, split, dict(metrics)))

    @hookimpl
    def after_checkpoint(run, path):  # noqa: ANN001
        calls.append(("checkpoint", run.step, path.name, (path / "state.json").is_file()))

    @hookimpl
    def on_train_end(run, result):  # noqa: ANN001
        calls.append(("end", result.steps, run.best["step"]))

    for fn in (register_components, on_train_start, after_step, log_metrics):
        setattr(mine, fn.__name__, fn)
    for fn in (after_evaluation, after_checkpoint, on_train_end):
        setattr(mine, fn.__name__, fn)
    return mine


@pytest.fixture
def host():
    def use(plugin):
        loaded = load_plugins(entry_points=[], extra=[("mine", plugin)], warn=False)
        assert loaded.records[0].ok, loaded.records[0].error
        assert loaded.plugins == {"mine": plugin}
        set_host(loaded)

    yield use
    set_host(None)


def test_module_level_run_hooks_are_called_in_order_with_their_arguments(tmp_path, host, script):
    script([0.3, 0.2, 0.1])
    calls = []
    host(_recording_plugin(calls))
    result = train(_pipeline({"epochs": 2, "log_every_steps": 5}), tmp_path)
    assert calls[0] == ("start", 0, 0, True, tmp_path)
    assert [c[1] for c in calls if c[0] == "step"] == list(range(1, 17))
    assert all(c[1] == c[2] for c in calls if c[0] == "step")  # run.step is live
    kinds = [c[0] if c[0] != "step" else f"step{c[1]}" for c in calls]
    assert kinds[kinds.index("step8") + 1 : kinds.index("step9")] == [
        "log",  # the epoch's train means
        "log",  # the evaluation's record
        "eval",
        "checkpoint",
    ]
    evals = [c for c in calls if c[0] == "eval"]
    assert [(c[1], c[2], c[3]["score"]) for c in evals] == [(8, "test", 0.3), (16, "test", 0.2)]
    checkpoints = [c for c in calls if c[0] == "checkpoint"]
    assert checkpoints == [("checkpoint", 8, "step_00000008", True)] + [
        ("checkpoint", 16, "step_00000016", True)
    ]
    logged = [(c[1], c[2], c[3]) for c in calls if c[0] == "log"]
    expected = [(r.pop("step"), r.pop("split"), r) for r in _jsonl(tmp_path)]
    for r in expected:
        r[2].pop("epoch")
    assert logged == expected  # every metrics.jsonl record, with the same values
    assert calls[-1] == ("end", 16, result.best["step"])


def test_a_hook_can_stop_the_run_after_any_step(tmp_path, host, script):
    script([0.5] * 3)
    calls = []
    host(_recording_plugin(calls, stop_at=5))
    result = train(_pipeline({"epochs": 3}), tmp_path)
    assert result.steps == 5 and result.epochs == 0
    assert result.stopped == {"by": "mine", "reason": "enough", "step": 5, "epoch": 0}
    state = json.loads((result.checkpoint / "state.json").read_text())
    assert state["step"] == 5 and state["trainer"]["batch_in_epoch"] == 5
    assert [c[1] for c in calls if c[0] == "eval"] == [5]  # the final evaluation


def test_a_pipeline_trained_again_starts_its_callbacks_and_loggers_afresh(tmp_path, script):
    pipeline = _pipeline(
        {"callbacks": [{"name": "early_stopping", "params": {"mode": "min", "metric": "score"}}],
         "loggers": ["csv"], "eval_every_epochs": 1}
    )  # fmt: skip
    for run in ("a", "b"):
        script([1.0, 0.5, 0.6, 0.7, 0.8, 0.9])
        result = train(pipeline, tmp_path / run)
        assert result.stopped["step"] == 5 * STEPS_PER_EPOCH  # patience 3 after the best at 2
        _csv_equals_jsonl(tmp_path / run)

import json

import pytest
import torch
import yaml

from modalforge.engine import NonFiniteLossError, OutputExistsError, Trainer, evaluate, train
from modalforge.engine.checkpoint import resolve_checkpoint
from modalforge.spec import parse_spec
from tests.core.engine.helpers import make_pipeline


def _lines(run, split=None):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if split is None or r["split"] == split]


def test_loss_falls_and_accuracy_rises_on_a_separable_task(tmp_path):
    trainer = Trainer(make_pipeline({"epochs": 4, "log_every_steps": 4}), tmp_path)
    before = trainer.evaluate()
    result = trainer.fit()
    train_rows = _lines(tmp_path, "train")
    assert train_rows[-1]["loss"] < 0.3 * train_rows[0]["loss"]
    assert before["accuracy"] < 0.6
    assert result.metrics["accuracy"] >= 0.95
    assert result.metrics["loss"] < 0.5 * before["loss"]
    assert result.steps == 4 * 8 and result.epochs == 4  # 64 samples / batch 8


def test_metrics_jsonl_results_and_spec_files(tmp_path):
    pipeline = make_pipeline({"epochs": 2, "log_every_steps": 4})
    result = train(pipeline, tmp_path)
    rows = _lines(tmp_path)
    train_rows, eval_rows = _lines(tmp_path, "train"), _lines(tmp_path, "test")
    assert len(train_rows) == 4 and len(eval_rows) == 2  # every 4 of 16 steps; each epoch
    for row in train_rows:
        assert {"step", "epoch", "split", "loss", "loss_ce", "lr", "time"} <= set(row)
    for row in eval_rows:
        assert {"step", "epoch", "split", "loss", "accuracy", "time"} <= set(row)
    assert [r["step"] for r in rows] == sorted(r["step"] for r in rows)
    assert eval_rows[-1]["accuracy"] == result.metrics["accuracy"]

    results = json.loads((tmp_path / "results.json").read_text())
    assert results["steps"] == 16 and results["metrics"] == pytest.approx(result.metrics)
    assert results["train_seconds"] > 0
    assert resolve_checkpoint(tmp_path) == result.checkpoint
    assert results["best_checkpoint"] == str(result.best_checkpoint)
    assert result.best["metric"] == "loss" and result.best["mode"] == "min"
    saved = parse_spec(yaml.safe_load((tmp_path / "spec.yaml").read_text()))
    assert saved == pipeline.spec


def test_gradient_accumulation_equals_the_full_batch(tmp_path):
    full = make_pipeline({"epochs": 1, "clip_grad_norm": 1.0})
    half = make_pipeline(
        {"epochs": 1, "clip_grad_norm": 1.0, "grad_accum_steps": 2},
        data={"dataset": "blobs", "batch_size": 4},
    )
    r_full = train(full, tmp_path / "full")
    r_half = train(half, tmp_path / "half")
    assert r_full.steps == r_half.steps == 8
    for p, q in zip(full.model.parameters(), half.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_bf16_autocast_trains_on_cpu(tmp_path):
    pipeline = make_pipeline({"epochs": 2, "precision": "bf16", "device": "cpu"})
    seen = []
    pipeline.model.head.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    result = train(pipeline, tmp_path)
    assert torch.bfloat16 in seen  # the head ran under autocast
    assert all(p.dtype == torch.float32 for p in pipeline.model.parameters())  # master weights
    assert result.metrics["accuracy"] >= 0.9


def test_loss_parameters_are_optimized_and_checkpointed(tmp_path):
    pipeline = make_pipeline({"epochs": 2}, loss="scaled_ce")
    result = train(pipeline, tmp_path)
    assert float(pipeline.loss.logit_scale.detach()) > 0.03  # learned (init 0): sharper logits
    from safetensors.torch import load_file

    saved = load_file(result.checkpoint / "model.safetensors")
    torch.testing.assert_close(saved["loss.logit_scale"], pipeline.loss.logit_scale.detach())
    fresh = make_pipeline({"epochs": 2}, loss="scaled_ce", init_seed=5)
    assert evaluate(fresh, tmp_path) == pytest.approx(result.metrics)
    assert float(fresh.loss.logit_scale.detach()) == float(pipeline.loss.logit_scale.detach())


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    # 8 steps per epoch; the loss turns NaN at its 11th call (step 11, in epoch 2).
    pipeline = make_pipeline(
        {"epochs": 3, "log_every_steps": 100},
        loss={"name": "nan_after", "params": {"after": 10}},
        data={"dataset": "blobs", "batch_size": 8, "eval_split": None},
    )
    with pytest.raises(NonFiniteLossError, match=r"NaN or infinite at step 11 \(epoch 2\)") as info:
        train(pipeline, tmp_path)
    assert "step_00000008" in str(info.value) and "is intact" in str(info.value)
    assert resolve_checkpoint(tmp_path).name == "step_00000008"
    steps = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert steps == ["latest.json", "step_00000008"]
    fresh = make_pipeline(init_seed=3)
    metrics = evaluate(fresh, tmp_path, split="test")  # the kept checkpoint loads and is finite
    assert all(torch.isfinite(p).all() for p in fresh.model.parameters())
    assert metrics["accuracy"] > 0.5


def test_refuses_to_overwrite_an_earlier_run(tmp_path):
    train(make_pipeline({"epochs": 1}), tmp_path)
    with pytest.raises(OutputExistsError, match="already holds checkpoints") as info:
        train(make_pipeline({"epochs": 1}), tmp_path)
    assert "--resume" in str(info.value)


def test_checkpoint_cadence_and_keep(tmp_path):
    pipeline = make_pipeline(
        {
            "epochs": 5,
            "checkpoint_every_epochs": 2,
            "keep_checkpoints": 1,
            "eval_every_epochs": 2,
            "best_metric": "accuracy",
        }
    )
    result = train(pipeline, tmp_path)
    kept = sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*"))
    # epochs 2 and 4 (steps 16, 32) and the end (40); keep 1 newest plus the best.
    assert "step_00000040" in kept and len(kept) <= 2
    assert result.best["metric"] == "accuracy" and result.best["mode"] == "max"
    assert result.best_checkpoint.name in kept
    evals = [r["epoch"] for r in _lines(tmp_path, "test")]
    assert evals == [2, 4, 5]


def test_unknown_best_metric_is_a_spec_error(tmp_path):
    from modalforge.errors import SpecError

    with pytest.raises(SpecError, match="train.best_metric.*auc"):
        train(make_pipeline({"epochs": 1, "best_metric": "auc"}), tmp_path)


def test_tensorboard_events_are_written_when_enabled(tmp_path):
    train(make_pipeline({"epochs": 1, "tensorboard": True}), tmp_path)
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_progress_bar_runs(tmp_path, capsys):
    result = train(make_pipeline({"epochs": 1, "progress": True}), tmp_path)
    assert result.steps == 8


@pytest.mark.slow
def test_torch_compile_trains_and_checkpoints_plain_keys(tmp_path):
    pipeline = make_pipeline(
        {"epochs": 1, "compile": True},
        data={"dataset": "blobs", "batch_size": 16, "eval_split": None},
    )
    result = train(pipeline, tmp_path)
    from safetensors.torch import load_file

    keys = set(load_file(result.checkpoint / "model.safetensors"))
    assert keys == {
        "encoders.x.proj.weight",
        "encoders.x.proj.bias",
        "head.fc.weight",
        "head.fc.bias",
    }


def test_fp16_on_cpu_trains_with_a_grad_scaler(tmp_path):
    from modalforge.errors import SpecError

    try:
        trainer = Trainer(make_pipeline({"epochs": 2, "precision": "fp16"}), tmp_path)
    except SpecError:
        pytest.skip("this PyTorch has no fp16 autocast on CPU")
    result = trainer.fit()
    assert result.metrics["accuracy"] >= 0.9
    if trainer.precision.scaler is not None:
        assert trainer.precision.scaler.get_scale() > 1.0


def test_num_threads_sets_torch_threads():
    before = torch.get_num_threads()
    try:
        Trainer(make_pipeline({"num_threads": 1}), None).close()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)

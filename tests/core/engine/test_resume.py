"""Resuming reproduces an uninterrupted run exactly: weights, optimizer, schedule, RNG, data."""

import json
import shutil

import pytest
import torch

from modalforge.engine import Trainer, train
from tests.core.engine.helpers import make_pipeline

# Dropout draws from the torch RNG; shuffling from the data order; cosine from the step count.
TRAIN = {
    "epochs": 3,
    "warmup_steps": 3,
    "min_lr_ratio": 0.1,
    "keep_checkpoints": 10,
    "log_every_steps": 4,
    "clip_grad_norm": 1.0,
}
MODEL = {
    "encoders": {"x": {"name": "dropout_mlp", "params": {"dim": 16, "dropout": 0.3}}},
    "head": "linear",
}


def _assert_same_weights(a, b):
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=f"{name} differs")


def test_resume_at_an_epoch_boundary_equals_the_uninterrupted_run(tmp_path):
    full = make_pipeline(TRAIN, model=MODEL)
    r_full = train(full, tmp_path / "full")
    assert r_full.steps == 24

    resumed = make_pipeline(TRAIN, model=MODEL, init_seed=42)  # different initial weights
    ckpt = tmp_path / "full" / "checkpoints" / "step_00000008"  # after epoch 1 of 3
    r_res = train(resumed, tmp_path / "resumed", resume=ckpt)
    _assert_same_weights(full.model, resumed.model)
    assert r_res.steps == 24 and r_res.epochs == 3
    assert r_res.metrics == pytest.approx(r_full.metrics)


def test_resume_in_the_middle_of_an_epoch(tmp_path):
    # Constant lr (min_lr_ratio=1) so stopping early with max_steps does not change the schedule.
    constant = {**TRAIN, "warmup_steps": 0, "min_lr_ratio": 1.0}
    full = make_pipeline({**constant, "max_steps": 20}, model=MODEL)
    train(full, tmp_path / "full")

    first = make_pipeline({**constant, "max_steps": 11}, model=MODEL)
    r1 = train(first, tmp_path / "run")  # stops 3 batches into epoch 2
    state = json.loads((r1.checkpoint / "state.json").read_text())
    assert state["step"] == 11 and state["trainer"]["batch_in_epoch"] == 3

    rest = make_pipeline({**constant, "max_steps": 20}, model=MODEL, init_seed=7)
    r2 = train(rest, tmp_path / "run", resume=tmp_path / "run")
    assert r2.steps == 20
    _assert_same_weights(full.model, rest.model)
    # The log has no duplicate steps and continues where the checkpoint left off.
    steps = [
        json.loads(x)["step"]
        for x in (tmp_path / "run" / "metrics.jsonl").open()
        if json.loads(x)["split"] == "train"
    ]
    assert steps == sorted(set(steps)) and steps[-1] == 20


def test_log_lines_past_the_checkpoint_are_dropped_on_resume(tmp_path):
    run = tmp_path / "run"
    train(make_pipeline(TRAIN, model=MODEL), run)
    # Pretend the run crashed after step 16: remove the later checkpoints.
    for name in ("step_00000024",):
        shutil.rmtree(run / "checkpoints" / name)
    (run / "checkpoints" / "latest.json").unlink()
    trainer = Trainer(make_pipeline(TRAIN, model=MODEL, init_seed=3), run)
    trainer.fit(resume=run / "checkpoints" / "step_00000016")
    rows = [json.loads(x) for x in (run / "metrics.jsonl").open()]
    train_steps = [r["step"] for r in rows if r["split"] == "train"]
    assert train_steps == sorted(set(train_steps))  # no step logged twice


def test_resuming_a_finished_run_trains_no_further(tmp_path):
    first = make_pipeline(TRAIN, model=MODEL)
    r1 = train(first, tmp_path)
    again = make_pipeline(TRAIN, model=MODEL, init_seed=9)
    r2 = train(again, tmp_path, resume=tmp_path)
    assert r2.steps == r1.steps and r2.checkpoint == r1.checkpoint
    _assert_same_weights(first.model, again.model)
    assert r2.metrics == pytest.approx(r1.metrics)

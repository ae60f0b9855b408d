"""Batch-norm layers never see a training batch of one sample (torch: "Expected more than 1
value per channel when training"): a lone last batch is dropped, a batch that skipped samples
left alone is skipped, and step / epoch / resume / accumulation accounting stays exact."""

import json
import warnings

import pytest
import torch

from modalforge.engine import train
from modalforge.engine.data import EpochSampler
from modalforge.errors import SpecError
from tests.core.engine.bn_toys import bn_pipeline
from tests.core.engine.helpers import make_pipeline

HOLEY = {"dataset": "holey_blobs", "batch_size": 2}  # 16 samples, sample 3 unreadable


def _same_weights(a, b):
    for (name, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=f"{name} differs")


def test_a_lone_last_batch_is_dropped_with_one_warning(tmp_path):
    data = {"dataset": "blobs", "batch_size": 9}  # 64 = 7 × 9 + 1
    with pytest.warns(UserWarning) as record:
        result = train(bn_pipeline({"epochs": 2}, data=data), tmp_path / "bn")
    assert result.steps == 2 * 7
    messages = [str(w.message) for w in record if "batch-norm" in str(w.message)]
    assert len(messages) == 1
    assert "data.train_split ('train')" in messages[0] and "sits that epoch out" in messages[0]
    state = json.loads((result.checkpoint / "state.json").read_text())
    assert state["trainer"]["batches_per_epoch"] == 7
    # Without batch norm the lone sample trains as before: 8 batches.
    assert train(make_pipeline({"epochs": 1}, data=data), tmp_path / "plain").steps == 8
    # With accumulation, 7 micro-batches make 4 steps (the last group has one).
    with pytest.warns(UserWarning, match="sits that epoch out"):
        pipe = bn_pipeline({"epochs": 1, "grad_accum_steps": 2}, data=data)
        accum = train(pipe, tmp_path / "acc")
    assert accum.steps == 4


def test_the_sample_left_out_changes_with_the_epoch():
    sampler = EpochSampler(10, shuffle=True, seed=0)
    sampler.drop_tail = 1
    left_out = set()
    for epoch in range(6):
        sampler.set_epoch(epoch)
        order = list(sampler)
        assert len(order) == len(sampler) == 9 and len(set(order)) == 9
        left_out |= set(range(10)) - set(order)
    assert len(left_out) > 1


def test_one_sample_per_batch_with_batch_norm_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError) as exc:
        train(bn_pipeline({}, data={"dataset": "blobs", "batch_size": 1}), tmp_path)
    assert exc.value.path == "data.batch_size" and "BatchNorm1d" in str(exc.value)


def test_a_batch_left_with_one_sample_by_skipped_samples_is_skipped(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(bn_pipeline({"epochs": 3}, data=HOLEY), tmp_path)
    # 8 batches per epoch; the one holding sample 3 keeps one sample: no step for it.
    assert result.steps == 3 * 7 and result.epochs == 3 and result.skipped_batches == 3
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["skipped_batches"] == 3
    state = json.loads((result.checkpoint / "state.json").read_text())
    assert state["trainer"]["batches_per_epoch"] == 8 and state["trainer"]["batch_in_epoch"] == 0
    notes = [str(w.message) for w in caught if "without an optimizer step" in str(w.message)]
    assert len(notes) == 3 and "1 batch(es) of epoch 3" in notes[-1] and "(3 in all)" in notes[-1]


def test_with_accumulation_the_group_of_a_skipped_batch_still_steps(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = train(bn_pipeline({"epochs": 2, "grad_accum_steps": 2}, data=HOLEY), tmp_path)
    assert result.steps == 2 * 4 and result.skipped_batches == 2
    # A group whose every micro-batch is skipped makes no step: make batches 0 and 1 of
    # epoch 0 (group 0) lone by making one sample of each unreadable.
    sampler = EpochSampler(16, shuffle=True, seed=0)
    order = list(sampler)
    data = {**HOLEY, "dataset": {"name": "holey_blobs", "params": {"bad": order[0:3:2]}}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = train(bn_pipeline({"epochs": 1, "grad_accum_steps": 2}, data=data), tmp_path / "g")
    assert result.steps == 3 and result.skipped_batches == 2


def test_resume_around_skipped_batches_equals_the_uninterrupted_run(tmp_path):
    cfg = {"epochs": 3, "keep_checkpoints": 10, "min_lr_ratio": 1.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = bn_pipeline(cfg, data=HOLEY)
        r_full = train(full, tmp_path / "full")
        first = bn_pipeline({**cfg, "max_steps": 10}, data=HOLEY)  # into epoch 2
        r1 = train(first, tmp_path / "run")
        rest = bn_pipeline(cfg, data=HOLEY, init_seed=5)
        r2 = train(rest, tmp_path / "run", resume=tmp_path / "run")
    state = json.loads((r1.checkpoint / "state.json").read_text())
    assert state["step"] == 10 and 0 < state["trainer"]["batch_in_epoch"] < 8
    assert r2.steps == r_full.steps == 21
    _same_weights(full.model, rest.model)  # BN running statistics included

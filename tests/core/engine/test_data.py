import pytest
import torch
from torch.utils.data import IterableDataset, TensorDataset

from modalforge.engine import Trainer
from modalforge.engine.data import EpochLoader, EpochSampler, batch_size_of
from modalforge.errors import DataError, SpecError
from tests.core.engine.helpers import make_pipeline


def test_epoch_order_depends_only_on_seed_and_epoch():
    a, b = EpochSampler(20, shuffle=True, seed=3), EpochSampler(20, shuffle=True, seed=3)
    a.set_epoch(1)
    b.set_epoch(1)
    assert list(a) == list(b) and sorted(a) == list(range(20))
    b.set_epoch(2)
    assert list(a) != list(b)  # a new permutation each epoch
    b.set_epoch(1, start=7)
    assert list(b) == list(a)[7:] and len(b) == 13  # resume skips what was already seen
    assert list(EpochSampler(5, shuffle=False, seed=0)) == [0, 1, 2, 3, 4]


def _loader(dataset, **kw):
    args = {
        "batch_size": 4,
        "shuffle": True,
        "seed": 0,
        "num_workers": 0,
        "drop_last": False,
        "pin_memory": False,
        "field": "data.train_split ('train')",
    } | kw
    return EpochLoader(dataset, **args)


def test_skipping_batches_resumes_the_same_epoch():
    ds = TensorDataset(torch.arange(10))
    loader = _loader(ds)
    full = [b[0].tolist() for b in loader.epoch(2)]
    assert [b[0].tolist() for b in loader.epoch(2, skip_batches=1)] == full[1:]
    assert loader.batches_per_epoch == 3


def test_empty_and_unbatchable_splits_are_data_errors():
    with pytest.raises(DataError, match="data.train_split.*empty"):
        _loader(TensorDataset(torch.zeros(0)))
    with pytest.raises(DataError, match="drop_last"):
        _loader(TensorDataset(torch.zeros(3)), drop_last=True)

    class Stream(IterableDataset):
        def __iter__(self):
            yield from range(3)

    with pytest.raises(DataError, match="not indexable"):
        _loader(Stream())


def test_batch_size_of_collated_batches():
    assert batch_size_of({"x": torch.zeros(5, 2), "target": torch.zeros(5)}) == 5
    assert batch_size_of({"text": ["a", "b", "c"]}) == 3


def test_evaluate_unknown_split_is_a_spec_error(tmp_path):
    trainer = Trainer(make_pipeline(), tmp_path)
    with pytest.raises(SpecError, match="no split 'valid'"):
        trainer.evaluate("valid")
    no_eval = make_pipeline(data={"dataset": "blobs", "eval_split": None})
    with pytest.raises(SpecError, match="data.eval_split"):
        Trainer(no_eval, tmp_path).evaluate()


def test_collate_samples_uses_each_modalitys_own_collate():
    from modalforge.engine.data import collate_dropping_none, collate_samples

    def pad(samples):
        return torch.nn.utils.rnn.pad_sequence(samples, batch_first=True, padding_value=-1)

    samples = [
        {"text": torch.tensor([1, 2, 3]), "image": torch.zeros(2), "target": 0},
        None,
        {"text": torch.tensor([4]), "image": torch.ones(2), "target": 1},
    ]
    batch, dropped = collate_dropping_none(samples, {"text": pad})
    assert dropped == 1 and list(batch) == ["text", "image", "target"]
    assert batch["text"].tolist() == [[1, 2, 3], [4, -1, -1]]
    assert batch["image"].tolist() == [[0, 0], [1, 1]] and batch["target"].tolist() == [0, 1]
    plain = collate_samples([samples[0], samples[0]])  # no collates: torch's default_collate
    assert plain["text"].shape == (2, 3)


def test_auto_loader_workers_none_on_cpu_a_few_per_process_on_an_accelerator(monkeypatch):
    import os

    from modalforge.engine.data import loader_workers

    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(16)), raising=False)
    assert loader_workers("auto", torch.device("cpu")) == 0
    assert loader_workers(3, torch.device("cpu")) == 3  # a number is taken as given
    assert loader_workers("auto", torch.device("cuda", 0)) == 4
    assert loader_workers("auto", torch.device("cuda", 0), world_size=8) == 1  # 16 // 8 - 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1}, raising=False)
    assert loader_workers("auto", torch.device("cuda", 0)) == 1

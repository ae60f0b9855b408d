"""data.cache: the deterministic prefix computed once (memory, disk), samples equal to the
uncached pipeline, disk files keyed by the chain and data, corrupt files recomputed, nonsense
refused; and tensor subclasses with metadata batched as plain tensors."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset

from modalforge.contracts import DatasetReader, Target, Transform
from modalforge.engine.data import EpochLoader
from modalforge.errors import DataError, SpecError
from modalforge.modality import Modality
from modalforge.pipeline import build_pipeline
from modalforge.registry import Registrar
from modalforge.spec import parse_spec
from tests.core.toy import toy_registry, toy_spec

N = 6


class Tagged(torch.Tensor):
    """A tensor subclass carrying metadata, like MONAI's MetaTensor (kept by torch ops)."""

    def as_tensor(self) -> torch.Tensor:
        return self.as_subclass(torch.Tensor)


class CountingData(DatasetReader):
    """``ct`` volumes (as :class:`Tagged`) whose every read appends a line to ``log``."""

    def __init__(self, log: str, offset: float = 0.0) -> None:
        self.log = log
        self.offset = offset

    @property
    def modalities(self) -> dict[str, Modality]:
        return {"ct": Modality("ct", "volume3d", (1, 4, 4, 4))}

    @property
    def target(self) -> Target:
        return Target("multiclass", 2)

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", "test")

    def load(self, split: str) -> Dataset:
        return _Reads(self.log, self.offset)


class _Reads(Dataset):
    def __init__(self, log: str, offset: float) -> None:
        self.log, self.offset = log, offset

    def __len__(self) -> int:
        return N

    def __getitem__(self, i: int) -> dict:
        with open(self.log, "a") as f:
            f.write(f"{i}\n")
        g = torch.Generator().manual_seed(i)
        ct = (torch.randn(1, 4, 4, 4, generator=g) + self.offset).as_subclass(Tagged)
        return {"ct": ct, "target": i % 2}


class Shift(Transform):
    raw = False

    def __init__(self, modality: Modality, value: float = 1.0) -> None:
        super().__init__(modality)
        self.value = value

    def __call__(self, x):  # noqa: ANN001, ANN204
        return x + self.value


class Jitter(Shift):
    random = True

    def __call__(self, x):  # noqa: ANN001, ANN204
        return x + torch.randn(x.shape)


class ReadsAffine(Shift):
    uses_metadata = True


def _reads(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()] if log.exists() else []


def _registry():
    registry = toy_registry()
    r = Registrar(registry, "test")
    r.dataset("counting", CountingData)
    r.transform("shift", Shift)
    r.transform("jitter", Jitter)
    r.transform("reads_affine", ReadsAffine)
    return registry


def _pipeline(log, transforms=None, cache="none", cache_dir=None, offset=0.0):
    data = {
        "dataset": {"name": "counting", "params": {"log": str(log), "offset": offset}},
        "batch_size": 4,
        "transforms": transforms or {},
        "cache": cache,
    }
    if cache_dir is not None:
        data["cache_dir"] = str(cache_dir)
    spec = toy_spec(
        data=data, model={"encoders": {"ct": {"name": "flatten", "params": {"dim": 3}}}}
    )
    spec["model"]["head"] = "linear"
    return build_pipeline(parse_spec(spec), _registry())


PREFIXED = {
    "pre": {"ct": [{"name": "shift", "params": {"value": 2.0}}]},
    "train": {"ct": ["jitter"]},
}


def _samples(dataset, seed=0):
    torch.manual_seed(seed)
    return [dataset[i]["ct"] for i in range(len(dataset))]


def _epochs(dataset, epochs=2, workers=0):
    loader = EpochLoader(
        dataset,
        batch_size=4,
        shuffle=True,
        seed=0,
        num_workers=workers,
        drop_last=False,
        pin_memory=False,
        field="data.train_split",
    )
    torch.manual_seed(0)
    return [b for e in range(epochs) for b in loader.epoch(e)]


@pytest.mark.parametrize("mode", ["memory", "disk"])
def test_cached_samples_equal_uncached_and_the_reader_runs_once_per_sample(tmp_path, mode):
    plain = _pipeline(tmp_path / "plain.log", PREFIXED)
    log = tmp_path / "cached.log"
    cached = _pipeline(
        log, PREFIXED, cache=mode, cache_dir=tmp_path / "c" if mode == "disk" else None
    )
    for train in (False, True):
        want = _samples(plain.load("train", train=train))
        got = _samples(cached.load("train", train=train))
        for a, b in zip(want, got, strict=True):
            torch.testing.assert_close(a, b)  # the random step still runs on the cached prefix
    want_batches = _epochs(plain.load("train", train=True))
    log.unlink()
    folder = tmp_path / "fresh" if mode == "disk" else None
    fresh = _pipeline(log, PREFIXED, cache=mode, cache_dir=folder)  # an empty cache
    batches = _epochs(fresh.load("train", train=True))  # two epochs
    assert sorted(_reads(log)) == list(range(N))  # each sample read once
    for a, b in zip(want_batches, batches, strict=True):
        torch.testing.assert_close(a["ct"], b["ct"])
        assert type(b["ct"]) is torch.Tensor


def test_memory_cache_is_filled_before_loader_workers_start(tmp_path):
    log = tmp_path / "reads.log"
    pipeline = _pipeline(log, PREFIXED, cache="memory")
    batches = _epochs(pipeline.load("train", train=True), workers=1)
    assert sorted(_reads(log)) == list(range(N))  # once each, in the main process (the log
    # is a file, so reads in worker processes would show too)
    assert sum(len(b["target"]) for b in batches) == 2 * N


def test_disk_cache_survives_a_new_pipeline_and_follows_the_chain_parameters(tmp_path):
    folder = tmp_path / "cache"
    log = tmp_path / "reads.log"
    first = _samples(_pipeline(log, PREFIXED, cache="disk", cache_dir=folder).load("test"))
    assert sorted(_reads(log)) == list(range(N))
    log.unlink()
    again = _samples(_pipeline(log, PREFIXED, cache="disk", cache_dir=folder).load("test"))
    assert _reads(log) == []  # a new instance (as in a new process) reads only the files
    for a, b in zip(first, again, strict=True):
        torch.testing.assert_close(a, b)
    (key,) = [p for p in folder.iterdir()]
    assert sorted(p.name for p in key.iterdir()) == sorted(
        ["chain.json", *(f"{i}.pt" for i in range(N))]
    )

    changed = {**PREFIXED, "pre": {"ct": [{"name": "shift", "params": {"value": 3.0}}]}}
    other = _samples(_pipeline(log, changed, cache="disk", cache_dir=folder).load("test"))
    assert sorted(_reads(log)) == list(range(N))  # a changed parameter: a new cache
    torch.testing.assert_close(other[0], first[0] + 1.0)
    log.unlink()
    _pipeline(log, PREFIXED, cache="disk", cache_dir=folder, offset=5.0).load("test")[0]
    assert _reads(log) == [0]  # another data source (the data set's parameters): new key
    assert len(list(folder.iterdir())) == 3


def test_a_corrupt_cache_file_is_recomputed_with_a_warning(tmp_path):
    folder, log = tmp_path / "cache", tmp_path / "reads.log"
    pipeline = _pipeline(log, PREFIXED, cache="disk", cache_dir=folder)
    want = _samples(pipeline.load("test"))
    (key,) = list(folder.iterdir())
    (key / "2.pt").write_bytes((key / "2.pt").read_bytes()[:40])  # truncated
    log.unlink()
    fresh = _pipeline(log, PREFIXED, cache="disk", cache_dir=folder)
    with pytest.warns(UserWarning, match=r"2\.pt cannot be read"):
        got = _samples(fresh.load("test"))
    assert _reads(log) == [2]
    for a, b in zip(want, got, strict=True):
        torch.testing.assert_close(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rewritten: read without complaint now
        _samples(_pipeline(log, PREFIXED, cache="disk", cache_dir=folder).load("test"))


def test_the_prefix_stops_at_the_first_random_step(tmp_path):
    # no pre: training caches the reader's output only (jitter comes first), evaluation also
    # the eval shift; the two are different keys
    transforms = {"train": {"ct": ["jitter"]}, "eval": {"ct": ["shift"]}}
    pipeline = _pipeline(tmp_path / "r.log", transforms, cache="disk", cache_dir=tmp_path / "c")
    pipeline.load("train", train=True)[0]
    pipeline.load("train", train=False)[0]
    chains = sorted((p / "chain.json").read_text() for p in (tmp_path / "c").iterdir())
    assert len(chains) == 2
    assert sum('"shift"' in c for c in chains) == 1  # only the evaluation chain caches shift
    with pytest.raises(SpecError, match=r"data\.transforms\.eval\.ct\.0.*reads the sample's meta"):
        _pipeline(
            tmp_path / "r.log",
            {"train": {"ct": ["jitter"]}, "eval": {"ct": ["reads_affine"]}},
            cache="memory",
        ).load("train", train=True)
    # in pre it is cached along with the prefix, which is fine
    ok = {"pre": {"ct": ["reads_affine"]}, "train": {"ct": ["jitter"]}}
    assert _pipeline(tmp_path / "r.log", ok, cache="memory").load("train", train=True)[0]


def test_spec_refuses_cache_nonsense(tmp_path):
    log = tmp_path / "r.log"
    with pytest.raises(SpecError, match="needs `cache_dir`"):
        _pipeline(log, cache="disk")
    with pytest.raises(SpecError, match="applies to `cache: disk` only"):
        _pipeline(log, cache="memory", cache_dir=tmp_path)
    with pytest.raises(SpecError, match=r"data\.transforms\.pre\.ct\.0.*random"):
        _pipeline(log, {"pre": {"ct": ["jitter"]}})


def test_disk_cache_refuses_samples_it_cannot_store_safely(tmp_path):
    from modalforge.data.cache import CachedDataset

    data = [{"ct": torch.zeros(2), "meta": {"when": object()}}]
    with pytest.raises(DataError, match=r"sample 0's 'meta'\['when'\] is a builtins.object"):
        CachedDataset(data, "disk", folder=tmp_path, key="k")[0]


def test_batches_hold_plain_tensors_when_the_reader_returns_tensor_subclasses(tmp_path):
    for transforms in ({}, {"eval": {"ct": ["shift"]}}):  # no chain at all, and a chain
        pipeline = _pipeline(tmp_path / "r.log", transforms)
        sample = pipeline.load("test")[0]["ct"]
        batch = next(iter(_epochs(pipeline.load("test"), epochs=1)))
        assert type(batch["ct"]) is torch.Tensor
        assert transforms or isinstance(sample, Tagged)  # the reader's own type reaches collate

"""A batch-norm encoder and a data set with unreadable samples, for the engine's BN handling."""

from __future__ import annotations

from torch import nn
from torch.utils.data import Dataset

from modalforge.engine.runtime import seed_everything
from modalforge.modality import Modality
from modalforge.pipeline import Pipeline, build_pipeline
from modalforge.registry import Registrar
from modalforge.spec import parse_spec
from tests.core.engine.helpers import Blobs, LayersEncoder, registry, spec_dict


class BatchNormMLP(LayersEncoder):
    """Linear → BatchNorm1d → ReLU: cannot train on a batch of one sample."""

    def __init__(self, modality: Modality, dim: int = 8) -> None:
        layers = nn.Sequential(nn.Linear(modality.shape[0], dim), nn.BatchNorm1d(dim), nn.ReLU())
        super().__init__(modality, layers, dim)


class Holes(Dataset):
    """``data`` with the samples at ``bad`` unreadable (``None``, as skipping readers return)."""

    def __init__(self, data: Dataset, bad: set[int]) -> None:
        self.data, self.bad = data, bad

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict | None:
        return None if i in self.bad else self.data[i]


class HoleyBlobs(Blobs):
    """Blobs whose training split has unreadable samples ``bad`` (default: sample 3)."""

    def __init__(self, num_samples: int = 16, bad: list[int] | None = None) -> None:
        super().__init__(num_samples)
        self._bad = set(bad if bad is not None else [3])

    def load(self, split: str) -> Dataset:
        data = super().load(split)
        return Holes(data, self._bad) if split == "train" else data


def bn_registry():
    reg = registry()
    r = Registrar(reg, "bn-tests")
    r.encoder("bn_mlp", BatchNormMLP)
    r.dataset("holey_blobs", HoleyBlobs)
    return reg


BN_MODEL = {"encoders": {"x": "bn_mlp"}, "head": "linear"}


def bn_pipeline(train: dict, *, init_seed: int = 0, **sections: object) -> Pipeline:
    seed_everything(init_seed)
    data = spec_dict(train, **{"model": BN_MODEL, **sections})
    return build_pipeline(parse_spec(data), bn_registry())

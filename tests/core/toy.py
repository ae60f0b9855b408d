"""Tiny components for core tests, registered without any installed plugin."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torch.utils.data import TensorDataset

from modalforge.contracts import (
    DatasetReader,
    Encoder,
    FeatureSpec,
    Fusion,
    Head,
    Loss,
    LossOutput,
    Metric,
    Target,
)
from modalforge.modality import Modality, ModalityKind
from modalforge.registry import Registrar, Registry


class DictDataset(TensorDataset):
    def __init__(self, names: list[str], *tensors: Tensor) -> None:
        super().__init__(*tensors)
        self.names = names

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return dict(zip(self.names, super().__getitem__(index), strict=True))


class ToyData(DatasetReader):
    """Random image2d + volume3d + lowdim samples with a 3-class target."""

    def __init__(self, num_samples: int = 24, with_volume: bool = True) -> None:
        g = torch.Generator().manual_seed(0)
        self._mods = {
            "image": Modality("image", ModalityKind.IMAGE2D, (1, 6, 6)),
            "state": Modality("state", ModalityKind.LOWDIM, (5,)),
        }
        if with_volume:
            self._mods["ct"] = Modality("ct", ModalityKind.VOLUME3D, (1, 4, 4, 4))
        names = list(self._mods)
        tensors = [torch.randn(num_samples, *m.shape, generator=g) for m in self._mods.values()]
        target = torch.randint(0, 3, (num_samples,), generator=g)
        self._data = DictDataset([*names, "target"], *tensors, target)

    @property
    def modalities(self) -> dict[str, Modality]:
        return self._mods

    @property
    def target(self) -> Target:
        return Target("multiclass", 3)

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", "test")

    def load(self, split: str) -> TensorDataset:
        return self._data


class FlattenEncoder(Encoder):
    """Flattens any modality and projects it to ``dim``."""

    accepts = (
        ModalityKind.IMAGE2D,
        ModalityKind.VOLUME3D,
        ModalityKind.LOWDIM,
        ModalityKind.TABULAR,
    )

    def __init__(self, modality: Modality, dim: int = 8) -> None:
        super().__init__(modality)
        numel = 1
        for d in modality.shape:
            numel *= d
        self.proj = nn.Linear(numel, dim)
        self._out = FeatureSpec(dim)

    @property
    def output(self) -> FeatureSpec:
        return self._out

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x.flatten(1))


class ImageOnlyEncoder(FlattenEncoder):
    accepts = (ModalityKind.IMAGE2D,)


class ConcatFusion(Fusion):
    def __init__(self, in_features: Mapping[str, FeatureSpec]) -> None:
        super().__init__(in_features)
        self._out = FeatureSpec(sum(f.dim for f in in_features.values()))

    @property
    def output(self) -> FeatureSpec:
        return self._out

    def forward(self, features, masks=None) -> Tensor:  # noqa: ANN001
        return torch.cat([features[m] for m in self.in_features], dim=-1)


class SumFusion(ConcatFusion):
    def __init__(self, in_dims: dict[str, int]) -> None:
        if len(set(in_dims.values())) != 1:
            raise ValueError(f"sum needs equal input dims, got {in_dims}")
        super().__init__({m: FeatureSpec(d) for m, d in in_dims.items()})
        self._out = FeatureSpec(next(iter(in_dims.values())))

    def forward(self, features, masks=None) -> Tensor:  # noqa: ANN001
        return torch.stack([features[m] for m in self.in_features]).sum(0)


class LinearHead(Head):
    def __init__(self, in_dim: int, target: Target, bias: bool = True) -> None:
        super().__init__(in_dim)
        self.fc = nn.Linear(in_dim, target.num_outputs, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x)


class CE(Loss):
    def forward(self, outputs, batch) -> LossOutput:  # noqa: ANN001
        loss = nn.functional.cross_entropy(outputs["logits"], batch["target"])
        return LossOutput(loss, {"ce": loss})


class Accuracy(Metric):
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.hits, self.n = 0, 0

    def update(self, outputs, batch) -> None:  # noqa: ANN001
        self.hits += int((outputs["logits"].argmax(-1) == batch["target"]).sum())
        self.n += len(batch["target"])

    def compute(self) -> dict[str, float]:
        return {"accuracy": self.hits / max(self.n, 1)}


def add_training(registry: Registry) -> Registry:
    """Add the built-in optimizers, schedules, callbacks and loggers (what the installed
    ``training`` plugin registers): every spec names an optimizer and a schedule."""
    import modalforge_training

    modalforge_training.register_components(Registrar(registry, "training"))
    return registry


def toy_registry(provider: str = "toy") -> Registry:
    registry = add_training(Registry())
    r = Registrar(registry, provider)
    r.dataset("toy", ToyData)
    r.encoder("flatten", FlattenEncoder)
    r.encoder("image_only", ImageOnlyEncoder)
    r.fusion("concat", ConcatFusion)
    r.fusion("sum", SumFusion)
    r.head("linear", LinearHead)
    r.loss("ce", CE)
    r.metric("accuracy", Accuracy)
    return registry


def toy_spec(**changes: object) -> dict:
    """A valid spec dict over the toy registry; ``changes`` replace top-level sections."""
    spec = {
        "name": "toy",
        "data": {"dataset": "toy", "batch_size": 8},
        "model": {
            "encoders": {
                "image": {"name": "flatten", "params": {"dim": 4}},
                "ct": {"name": "flatten", "params": {"dim": 6}},
                "state": "flatten",
            },
            "fusion": "concat",
            "head": "linear",
        },
        "loss": "ce",
        "metrics": ["accuracy"],
        "train": {"epochs": 1, "progress": False},
    }
    spec.update(changes)
    return spec

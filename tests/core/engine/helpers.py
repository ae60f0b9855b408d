"""Tiny components and pipelines for engine tests, registered without any installed plugin."""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from modalforge.contracts import (
    DatasetReader,
    Encoder,
    FeatureSpec,
    Generator,
    Loss,
    LossOutput,
    Target,
)
from modalforge.engine.runtime import seed_everything
from modalforge.modality import Modality, ModalityKind
from modalforge.pipeline import Pipeline, build_pipeline
from modalforge.registry import Registrar, Registry
from modalforge.spec import parse_spec
from tests.core.toy import CE, Accuracy, DictDataset, FlattenEncoder, LinearHead, add_training


class Blobs(DatasetReader):
    """Three well-separated Gaussian blobs in 4-D: a linear model reaches ~100% accuracy."""

    def __init__(self, num_samples: int = 64, noise: float = 0.5) -> None:
        self._mods = {"x": Modality("x", ModalityKind.LOWDIM, (4,))}
        self._splits = {}
        centers = torch.tensor([[3.0, 0, 0, 0], [0, 3.0, 0, 0], [0, 0, 3.0, 0]])
        for i, split in enumerate(("train", "test")):
            g = torch.Generator().manual_seed(100 + i)
            y = torch.randint(0, 3, (num_samples,), generator=g)
            x = centers[y] + noise * torch.randn(num_samples, 4, generator=g)
            self._splits[split] = DictDataset(["x", "target"], x, y)

    @property
    def modalities(self) -> dict[str, Modality]:
        return self._mods

    @property
    def target(self) -> Target:
        return Target("multiclass", 3)

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", "test")

    def load(self, split: str) -> DictDataset:
        return self._splits[split]


class LayersEncoder(Encoder):
    """A low-dim encoder whose subclasses set ``self.net`` (output width ``dim``)."""

    accepts = (ModalityKind.LOWDIM,)

    def __init__(self, modality: Modality, net: nn.Module, dim: int) -> None:
        super().__init__(modality)
        self.net = net
        self._out = FeatureSpec(dim)

    @property
    def output(self) -> FeatureSpec:
        return self._out

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class DropoutEncoder(LayersEncoder):
    """Linear → ReLU → Dropout: its training draws from the torch RNG (resume must restore it)."""

    def __init__(self, modality: Modality, dim: int = 16, dropout: float = 0.2) -> None:
        layers = nn.Sequential(nn.Linear(modality.shape[0], dim), nn.ReLU(), nn.Dropout(dropout))
        super().__init__(modality, layers, dim)


class ScaledCE(Loss):
    """Cross-entropy with a learnable logit scale (a loss that owns a parameter)."""

    def __init__(self) -> None:
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(0.0))

    def forward(self, outputs, batch) -> LossOutput:  # noqa: ANN001
        loss = F.cross_entropy(outputs["logits"] * self.logit_scale.exp(), batch["target"])
        return LossOutput(loss, {"ce": loss})


class NaNAfter(Loss):
    """Cross-entropy that turns NaN from its ``after``-th call on (a diverging run)."""

    def __init__(self, after: int = 6) -> None:
        super().__init__()
        self.after, self.calls = after, 0

    def forward(self, outputs, batch) -> LossOutput:  # noqa: ANN001
        self.calls += 1
        loss = F.cross_entropy(outputs["logits"], batch["target"])
        if self.calls > self.after:
            loss = loss * float("nan")
        return LossOutput(loss)


class Points(DatasetReader):
    """2-D points around (2, -1): what the toy GAN learns to generate."""

    CENTER = (2.0, -1.0)

    def __init__(self, num_samples: int = 256) -> None:
        g = torch.Generator().manual_seed(7)
        pts = torch.tensor(self.CENTER) + 0.3 * torch.randn(num_samples, 2, generator=g)
        self._data = DictDataset(["points"], pts)

    @property
    def modalities(self) -> dict[str, Modality]:
        return {"points": Modality("points", ModalityKind.LOWDIM, (2,))}

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train",)

    def load(self, split: str) -> DictDataset:
        return self._data


class ToyGAN(Generator):
    """A tiny GAN with two optimizers, trained through the engine's StepContext."""

    def __init__(self, latent: int = 2, hidden: int = 16) -> None:
        super().__init__()
        self.latent = latent
        self.gen = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, 2))
        self.disc = nn.Sequential(nn.Linear(2, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def configure_optimizers(self, lr: float, weight_decay: float):  # noqa: ANN201
        return {
            "generator": torch.optim.Adam(self.gen.parameters(), lr=lr, betas=(0.5, 0.9)),
            "discriminator": torch.optim.Adam(self.disc.parameters(), lr=lr, betas=(0.5, 0.9)),
        }

    def training_step(self, batch: Mapping[str, Tensor], ctx) -> dict[str, Tensor]:  # noqa: ANN001
        real = batch["points"]
        n = real.shape[0]
        with ctx.autocast():
            fake = self.gen(torch.randn(n, self.latent, device=real.device))
            d_real, d_fake = self.disc(real), self.disc(fake.detach())
            d_loss = F.binary_cross_entropy_with_logits(
                d_real, torch.ones_like(d_real)
            ) + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        ctx.backward(d_loss)
        ctx.step("discriminator")
        with ctx.autocast():
            g_out = self.disc(fake)
            g_loss = F.binary_cross_entropy_with_logits(g_out, torch.ones_like(g_out))
        ctx.backward(g_loss)
        ctx.step("generator")
        return {"d_loss": d_loss, "g_loss": g_loss}

    def sample(self, condition: object, num_samples: int, generator=None) -> Tensor:  # noqa: ANN001
        z = torch.randn(num_samples, self.latent, generator=generator)
        return self.gen(z)

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        n = next(iter(batch.values())).shape[0]
        return {"samples": self.gen(torch.randn(n, self.latent))}


def registry() -> Registry:
    reg = add_training(Registry())
    r = Registrar(reg, "engine-tests")
    r.dataset("blobs", Blobs)
    r.dataset("points", Points)
    r.encoder("flatten", FlattenEncoder)
    r.encoder("dropout_mlp", DropoutEncoder)
    r.head("linear", LinearHead)
    r.loss("ce", CE)
    r.loss("scaled_ce", ScaledCE)
    r.loss("nan_after", NaNAfter)
    r.metric("accuracy", Accuracy)
    r.generator("toy_gan", ToyGAN)
    return reg


BASE_SPEC = {
    "name": "engine-test",
    "seed": 0,
    "data": {"dataset": "blobs", "batch_size": 8},
    "model": {"encoders": {"x": {"name": "flatten", "params": {"dim": 8}}}, "head": "linear"},
    "loss": "ce",
    "metrics": ["accuracy"],
    "train": {
        "epochs": 2,
        "lr": 0.05,
        "progress": False,
        "tensorboard": False,
        "log_every_steps": 2,
    },
}


def spec_dict(train: Mapping | None = None, **sections: object) -> dict:
    spec = copy.deepcopy(BASE_SPEC)
    spec.update(copy.deepcopy(sections))
    spec["train"].update(train or {})
    return spec


def make_pipeline(
    train: Mapping | None = None, *, init_seed: int = 0, **sections: object
) -> Pipeline:
    """Build a pipeline over the test registry; ``init_seed`` fixes the initial weights."""
    seed_everything(init_seed)
    return build_pipeline(parse_spec(spec_dict(train, **sections)), registry())


GAN_SECTIONS = {
    "data": {"dataset": "points", "batch_size": 32, "eval_split": None},
    "model": {"generator": "toy_gan"},
    "loss": None,
    "metrics": [],
}

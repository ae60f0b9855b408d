"""Action heads through the real builder and engine: the head and loss are sized from the data
set's (k, A) target, ``action_is_pad`` reaches the loss through the loaders' collate, training
lowers the loss, and the diffusion loss trains once bound to the model's head."""

from __future__ import annotations

import pytest
import torch

from modalforge.contracts import DatasetReader, Target
from modalforge.engine import Trainer
from modalforge.engine.runtime import seed_everything
from modalforge.errors import SpecError
from modalforge.modality import Modality, ModalityKind
from modalforge.pipeline import build_pipeline
from modalforge.registry import Registrar, Registry
from modalforge.spec import parse_spec
from modalforge_robotics.heads import ACTION_PAD_KEY, MLPActionHead, register
from tests.core.toy import FlattenEncoder, add_training

K, A = 3, 2


class Chunks(DatasetReader):
    """``state`` (6,) → a chunk ``tanh(state @ W)`` (k, A); the last step of every 4th sample is
    padding, whose target value is ``pad_value``."""

    def __init__(self, pad_value: float = 0.0, num_samples: int = 64) -> None:
        g = torch.Generator().manual_seed(0)
        weight = torch.randn(6, K * A, generator=g) / 6**0.5
        self.samples = {}
        for i, split in enumerate(("train", "test")):
            x = torch.randn(num_samples, 6, generator=torch.Generator().manual_seed(10 + i))
            y = torch.tanh(x @ weight).reshape(num_samples, K, A)
            pad = torch.zeros(num_samples, K, dtype=torch.bool)
            pad[::4, -1] = True
            y[pad] = pad_value
            self.samples[split] = [
                {"state": x[j], "target": y[j], ACTION_PAD_KEY: pad[j]} for j in range(num_samples)
            ]

    @property
    def modalities(self) -> dict[str, Modality]:
        return {"state": Modality("state", ModalityKind.LOWDIM, (6,))}

    @property
    def target(self) -> Target:
        return Target("regression", K * A, shape=(K, A))

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", "test")

    def load(self, split: str) -> list[dict[str, torch.Tensor]]:
        return self.samples[split]


class GarbagePads(Chunks):
    def __init__(self) -> None:
        super().__init__(pad_value=50.0)


def _registry() -> Registry:
    reg = add_training(Registry())
    register(Registrar(reg, "robotics"))
    r = Registrar(reg, "tests")
    r.dataset("chunks", Chunks)
    r.dataset("garbage_pads", GarbagePads)
    r.encoder("flatten", FlattenEncoder)
    return reg


def _pipeline(head: dict, loss: str, dataset: str = "chunks", epochs: int = 1):
    seed_everything(0)
    spec = {
        "name": "action-heads",
        "seed": 0,
        "data": {"dataset": dataset, "batch_size": 16},
        "model": {"encoders": {"state": {"name": "flatten", "params": {"dim": 16}}}, "head": head},
        "loss": loss,
        "metrics": [],
        "train": {"epochs": epochs, "lr": 0.01, "progress": False, "tensorboard": False},
    }
    return build_pipeline(parse_spec(spec), _registry())


def test_builder_sizes_the_head_and_training_lowers_the_loss(tmp_path):
    head = {"name": "mse_action", "params": {"hidden_dims": [32], "tanh": True}}
    pipeline = _pipeline(head, "action_mse", epochs=15)
    assert isinstance(pipeline.model.head, MLPActionHead)
    assert (pipeline.model.head.horizon, pipeline.model.head.action_dim) == (K, A)
    assert pipeline.loss.shape == (K, A)
    trainer = Trainer(pipeline, tmp_path)
    try:
        before = trainer.evaluate()["loss"]
        after = trainer.fit().metrics["loss"]
    finally:
        trainer.close()
    assert after < 0.2 * before, (before, after)


@pytest.mark.parametrize(
    "head, loss",
    [
        ("mse_action", "action_mse"),
        ("gmm_action", "action_gmm_nll"),
        ("binned_action", "action_bins_ce"),
    ],
)
def test_padded_targets_do_not_change_the_engines_loss(head, loss):
    losses = []
    for dataset in ("chunks", "garbage_pads"):
        trainer = Trainer(_pipeline(head, loss, dataset), None)
        try:
            losses.append(trainer.evaluate()["loss"])
        finally:
            trainer.close()
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)


def test_builder_binds_the_diffusion_loss_to_the_head_and_it_trains(tmp_path):
    head = {"name": "diffusion_action", "params": {"timesteps": 20, "width": 32, "layers": 1}}
    pipeline = _pipeline(head, "action_diffusion", epochs=2)
    assert pipeline.loss._head is pipeline.model.head  # bound by build_pipeline
    assert not list(pipeline.loss.parameters())  # the denoiser stays the model's alone
    unbound = type(pipeline.loss)(pipeline.dataset.target)
    with pytest.raises(SpecError, match="bind_model"):
        unbound(pipeline.model({"state": torch.randn(2, 6)}), {"target": torch.zeros(2, K, A)})
    trainer = Trainer(pipeline, tmp_path)
    try:
        result = trainer.fit()
    finally:
        trainer.close()
    assert result.steps == 2 * 4 and torch.isfinite(torch.tensor(result.metrics["loss"]))
    chunk = pipeline.model.head.act(pipeline.model({"state": torch.randn(2, 6)}))
    assert chunk.shape == (2, K, A)

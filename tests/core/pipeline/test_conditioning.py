"""Conditioned encoders (``condition_on``): built after, sized from and fed by the encoders they
name, in a supervised model."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from modalforge.errors import SpecError
from modalforge.modality import Modality
from modalforge.pipeline import build_pipeline
from modalforge.registry import Registrar
from modalforge.spec import parse_spec
from tests.core.toy import FlattenEncoder, toy_registry, toy_spec


class GatedEncoder(FlattenEncoder):
    """Flattened input times a gate computed from the condition: ``x · (1 + tanh(W c))``."""

    def __init__(
        self,
        modality: Modality,
        dim: int = 8,
        condition_on: list[str] = [],  # noqa: B006
        condition_dim: int | None = None,
    ) -> None:
        super().__init__(modality, dim)
        self.condition_on = tuple(condition_on)
        self.condition_dim = condition_dim
        self.gate = torch.nn.Linear(condition_dim or 1, dim)

    def forward(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        return super().forward(x) * (1 + torch.tanh(self.gate(condition)))


def _registry():  # noqa: ANN202
    registry = toy_registry()
    Registrar(registry, "cond").encoder("gated", GatedEncoder)
    return registry


def _spec(condition_on, **model) -> dict:  # noqa: ANN001
    spec = toy_spec()
    spec["model"]["encoders"] = {
        # the conditioned encoder comes first in the spec: the builder still builds it last
        "image": {"name": "gated", "params": {"dim": 4, "condition_on": condition_on}},
        "ct": {"name": "flatten", "params": {"dim": 6}},
        "state": {"name": "flatten", "params": {"dim": 3}},
    }
    spec["model"].update(model)
    return spec


def test_conditioned_encoder_is_sized_from_and_fed_by_its_conditions():
    pipeline = build_pipeline(parse_spec(_spec(["state", "ct"])), _registry())
    model = pipeline.model
    image = model.encoders["image"]
    assert image.condition_dim == 3 + 6  # state then ct, in condition_on's order
    assert list(model.encoders) == ["image", "ct", "state"]  # the spec's order is kept
    batch = next(iter(torch.utils.data.DataLoader(pipeline.load("train"), batch_size=5)))
    features = model.encode(batch)
    condition = torch.cat(
        [model.encoders["state"](batch["state"]), model.encoders["ct"](batch["ct"])], dim=-1
    )
    torch.testing.assert_close(features["image"], image(batch["image"], condition))
    features["image"].sum().backward()  # the image's features alone
    assert image.gate.weight.grad.abs().sum() > 0
    # so the condition's encoder learns through the conditioned one
    state_grad = model.encoders["state"].proj.weight.grad
    assert state_grad is not None and state_grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("condition_on", "model", "match"),
    [
        (["audio"], {}, r"condition_on: 'audio' is not another encoder"),
        (["image"], {}, r"condition_on: 'image' is not another encoder"),
    ],
)
def test_condition_errors_name_the_field(condition_on, model, match):
    with pytest.raises(SpecError, match=match) as err:
        build_pipeline(parse_spec(_spec(condition_on, **model)), _registry())
    assert "model.encoders.image.params.condition_on" in str(err.value)


def test_conditions_are_one_level_deep():
    spec = _spec(["state"])
    spec["model"]["encoders"]["state"] = {"name": "gated", "params": {"condition_on": ["ct"]}}
    with pytest.raises(SpecError, match="'state' is conditioned itself"):
        build_pipeline(parse_spec(spec), _registry())

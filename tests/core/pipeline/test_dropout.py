"""Modality dropout: drop rates match p, a sample always keeps a modality, eval is untouched."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
import torch
from torch import Tensor

from modalforge.contracts import FeatureSpec, Fusion, Target
from modalforge.errors import SpecError
from modalforge.modality import Modality, ModalityKind
from modalforge.pipeline import MultimodalModel, build_pipeline
from modalforge.pipeline.dropout import dropout_masks
from modalforge.spec import parse_spec
from tests.core.toy import FlattenEncoder, LinearHead, toy_registry, toy_spec

NAMES = ("a", "b", "c")


class MaskedSum(Fusion):
    """Sums the present modalities' features (an absent one contributes exactly zero)."""

    def __init__(self, in_features: Mapping[str, FeatureSpec]) -> None:
        super().__init__(in_features)
        self._out = FeatureSpec(next(iter(in_features.values())).dim)

    @property
    def output(self) -> FeatureSpec:
        return self._out

    def forward(self, features, masks=None) -> Tensor:  # noqa: ANN001
        total = 0
        for m in self.in_features:
            keep = 1.0 if masks is None or m not in masks else masks[m].float()[:, None]
            total = total + features[m] * keep
        return total


def _model(dropout: dict[str, float] | None, names=NAMES) -> MultimodalModel:  # noqa: ANN001
    torch.manual_seed(0)
    encoders = {m: FlattenEncoder(Modality(m, ModalityKind.LOWDIM, (3,)), dim=4) for m in names}
    fusion = MaskedSum({m: FeatureSpec(4) for m in names})
    head = LinearHead(4, Target("multiclass", 2))
    return MultimodalModel(encoders, fusion, head, modality_dropout=dropout)


def _batch(n: int, names=NAMES) -> dict[str, Tensor]:  # noqa: ANN001
    g = torch.Generator().manual_seed(1)
    return {m: torch.randn(n, 3, generator=g) for m in names}


def test_drop_rates_match_p_and_no_sample_is_emptied():
    p = {"a": 0.2, "b": 0.5, "c": 0.6}
    n = 40_000
    masks = dropout_masks(_batch(n), NAMES, p, torch.Generator().manual_seed(0))
    dropped = {m: (~masks[m]).float().mean().item() for m in NAMES}
    all_p = 0.2 * 0.5 * 0.6  # draws that would empty a sample; 'a' (lowest p) is kept then
    expected = {"a": 0.2 - all_p, "b": 0.5, "c": 0.6}
    for m in NAMES:  # binomial standard error <= 0.0025 at n = 40k; allow 4 sigma
        assert abs(dropped[m] - expected[m]) < 0.01, (m, dropped[m], expected[m])
    present = torch.stack([masks[m] for m in NAMES], 1)
    assert present.any(dim=1).all()
    # b and c are drawn independently
    both = ((~masks["b"]) & (~masks["c"])).float().mean().item()
    assert abs(both - 0.5 * 0.6) < 0.01


def test_unlisted_modality_is_never_dropped_and_rescues_nothing():
    masks = dropout_masks(_batch(5000), NAMES, {"a": 0.9, "b": 0.9}, None)
    assert masks["c"].all()
    assert abs((~masks["a"]).float().mean().item() - 0.9) < 0.02


def test_combines_with_the_batch_masks():
    n = 4000
    batch = _batch(n)
    given_a = torch.arange(n) % 2 == 0
    given_b = torch.arange(n) % 4 != 1
    batch["masks"] = {"a": given_a, "b": given_b, "c": torch.zeros(n, dtype=torch.bool)}
    masks = dropout_masks(batch, NAMES, {"a": 0.5, "b": 0.5, "c": 0.5}, None)
    assert not (masks["a"] & ~given_a).any() and not (masks["b"] & ~given_b).any()
    assert not masks["c"].any()  # absent stays absent, even as a rescue
    had_some = given_a | given_b
    now = masks["a"] | masks["b"]
    assert (now == had_some).all()  # every sample that had a modality still has one
    # a sample with only 'a' present keeps it although p_a = 0.5
    only_a = given_a & ~given_b
    assert masks["a"][only_a].all()


def test_training_forward_drops_and_eval_does_not():
    batch = _batch(64)
    plain, dropping = _model(None), _model({"a": 0.5, "b": 0.3})
    dropping.train()
    torch.manual_seed(3)
    out = dropping(batch)["logits"]
    torch.manual_seed(3)
    masks = dropping.masks(batch)
    assert 0 < (~masks["a"]).sum() < 64
    expected = plain.head(plain.fusion(plain.encode(batch), masks))
    torch.testing.assert_close(out, expected)
    assert not torch.allclose(out, plain(batch)["logits"])

    dropping.eval()
    assert dropping.masks(batch) is None
    torch.testing.assert_close(dropping(batch)["logits"], plain(batch)["logits"])
    given = {"a": torch.ones(64, dtype=torch.bool)}
    assert dropping.masks({**batch, "masks": given}) is given


def test_dropped_modality_gets_no_gradient():
    model = _model({"a": 0.5}).train()
    batch = _batch(32)
    batch["a"].requires_grad_(True)
    torch.manual_seed(7)
    model(batch)["logits"].sum().backward()
    torch.manual_seed(7)
    kept = model.masks(batch)["a"]
    assert 0 < kept.sum() < 32
    grad = batch["a"].grad
    assert (grad[~kept] == 0).all()
    assert (grad[kept].abs().sum(dim=1) > 0).all()


def test_model_rejects_bad_dropout():
    with pytest.raises(ValueError, match="'z' is not an encoded modality"):
        _model({"z": 0.1})
    with pytest.raises(ValueError, match=r"must be in \[0, 1\)"):
        _model({"a": 1.0})
    with pytest.raises(ValueError, match="needs a fusion"):
        MultimodalModel(
            {"a": FlattenEncoder(Modality("a", ModalityKind.LOWDIM, (3,)), dim=4)},
            None,
            LinearHead(4, Target("multiclass", 2)),
            modality_dropout={"a": 0.2},
        )


def _spec(dropout: dict, **model) -> dict:  # noqa: ANN003
    data = toy_spec()
    data["model"].update(model)
    data["model"]["modality_dropout"] = dropout
    return data


def test_builder_passes_dropout_to_the_model():
    p = build_pipeline(parse_spec(_spec({"image": 0.3, "ct": 0.1})), toy_registry())
    assert p.model.modality_dropout == {"image": 0.3, "ct": 0.1}


@pytest.mark.parametrize(
    ("dropout", "model", "message"),
    [
        ({"audio": 0.3}, {}, "model.modality_dropout.audio: 'audio' is not one of the model's"),
        ({"image": 1.0}, {}, r"model.modality_dropout.image: drop probability must be in \[0, 1\)"),
        ({"image": -0.1}, {}, "model.modality_dropout.image: drop probability"),
        (
            {"image": 0.2},
            {"encoders": {"image": "flatten"}, "fusion": None},
            "model.modality_dropout.image: a single encoder without a fusion cannot drop",
        ),
    ],
)
def test_builder_rejects_bad_dropout(dropout, model, message):
    with pytest.raises(SpecError, match=message):
        build_pipeline(parse_spec(_spec(dropout, **model)), toy_registry())


def test_dropout_is_for_supervised_models_only():
    data = _spec({"image": 0.2})
    data["model"] = {"type": "generator", "generator": "g", "modality_dropout": {"image": 0.2}}
    with pytest.raises(SpecError, match="modality_dropout` applies to `type: supervised` only"):
        parse_spec(data)

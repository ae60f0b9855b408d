"""Every fusion: sized from ``in_features``, 2 and 3 modalities, gradients, masks, pipeline."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from modalforge.contracts import FeatureSpec, Fusion
from modalforge.pipeline import build_pipeline
from modalforge.plugin import load_plugins
from modalforge.spec import parse_spec

IN3 = {"image": FeatureSpec(4, tokens=True), "labs": FeatureSpec(3), "state": FeatureSpec(2)}
IN2 = {m: IN3[m] for m in ("image", "labs")}

# registered name -> params (film's condition is one of both IN2 and IN3)
CASES: dict[str, dict] = {
    "concat": {"proj_dim": 3},
    "mean": {"dim": 5},
    "sum": {"dim": 5},
    "max": {"dim": 5},
    "gmu": {"dim": 5},
    "tensor": {"dim": 3, "out_dim": 5},
    "low_rank_tensor": {"out_dim": 5, "rank": 3},
    "film": {"condition": "labs", "include_condition": True},
    "late": {"dim": 5, "mode": "learned"},
    "cross_attention": {"dim": 8, "heads": 2, "layers": 2},
    "bottleneck": {"dim": 8, "heads": 2, "layers": 2, "num_bottlenecks": 3},
    "bottleneck_cls": {"dim": 8, "heads": 2, "layers": 1, "readout": "cls"},
    "token_learner": {"dim": 8, "heads": 2, "layers": 1, "num_tokens": 2, "readout": "flatten"},
}
NAMES = list(CASES)


def _factory(case: str):
    host = load_plugins(warn=False)
    return host.registry.get("fusion", case.removesuffix("_cls")).factory


def _build(case: str, in_features) -> Fusion:
    torch.manual_seed(0)
    return _factory(case)(in_features=in_features, **CASES[case])


def _features(fusion: Fusion, batch: int = 8, seed: int = 1) -> dict[str, torch.Tensor]:
    """Random inputs of the kind the model would pass: tokens where the fusion asks for them."""
    g = torch.Generator().manual_seed(seed)
    return {
        m: torch.randn(batch, 3, f.dim, generator=g) if f.tokens else torch.randn(batch, f.dim)
        for m, f in fusion.in_features.items()
    }


def test_every_case_is_registered():
    host = load_plugins(warn=False)
    for case in NAMES:
        assert ("fusion", case.removesuffix("_cls")) in host.registry


@pytest.mark.parametrize("in_features", [IN2, IN3], ids=["2mod", "3mod"])
@pytest.mark.parametrize("case", NAMES)
def test_output_matches_declared_width(case, in_features):
    fusion = _build(case, in_features)
    assert set(fusion.in_features) == set(in_features)
    out = fusion(_features(fusion))
    assert out.shape == (8, fusion.output.dim)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("in_features", [IN2, IN3], ids=["2mod", "3mod"])
@pytest.mark.parametrize("case", NAMES)
def test_every_parameter_gets_a_nonzero_gradient(case, in_features):
    """The MultiBench-LMF regression: no factor may sit outside the module's parameters."""
    fusion = _build(case, in_features)
    params = dict(fusion.named_parameters())
    assert params, "fusion has no trainable parameters"
    feats = {m: t.requires_grad_() for m, t in _features(fusion).items()}
    out = fusion(feats)
    (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(2))).sum().backward()
    for name, p in params.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"{case}: no gradient for {name}"
    for m, t in feats.items():
        assert t.grad is not None and torch.isfinite(t.grad).all(), m


@pytest.mark.parametrize("case", NAMES)
def test_absent_modality_cannot_influence_the_output(case):
    fusion = _build(case, IN3).eval()
    feats = _features(fusion)
    masks = {
        "labs": torch.tensor([True, False, True, False, True, False, True, False]),
        "state": torch.tensor([True, True, False, False, True, True, True, False]),
        "image": torch.tensor([True, True, True, False, False, True, True, True]),
    }  # sample 3: nothing present
    out = fusion(feats, masks)
    assert torch.isfinite(out).all()
    poisoned = {m: t.clone() for m, t in feats.items()}
    for m, keep in masks.items():
        poisoned[m][~keep] = torch.randn_like(poisoned[m][~keep]) * 1e3
    torch.testing.assert_close(fusion(poisoned, masks), out)
    # gradients stay finite with absent modalities
    feats = {m: t.requires_grad_() for m, t in feats.items()}
    fusion(feats, masks).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in fusion.parameters() if p.grad is not None)


@pytest.mark.parametrize("case", NAMES)
def test_all_true_masks_equal_no_masks(case):
    fusion = _build(case, IN3).eval()
    feats = _features(fusion)
    masks = {m: torch.ones(8, dtype=torch.bool) for m in IN3}
    torch.testing.assert_close(fusion(feats, masks), fusion(feats))


SPEC = {
    "name": "fusion",
    "data": {
        "dataset": {
            "name": "synthetic",
            "params": {
                "num_samples": 12,
                "num_classes": 3,
                "image2d_size": 8,
                "tabular_features": 5,
                "lowdim_features": 3,
                "missing_prob": 0.3,
            },
        },
        "batch_size": 6,
    },
    "model": {
        "encoders": {
            "image": {"name": "cnn", "params": {"widths": [4, 8]}},
            "tabular": {"name": "mlp", "params": {"hidden_dims": [8], "out_dim": 6}},
            "lowdim": {"name": "mlp", "params": {"hidden_dims": [], "out_dim": 4}},
        },
        "head": {"name": "classification", "params": {"hidden_dims": []}},
    },
    "loss": "cross_entropy",
}


@pytest.mark.parametrize("case", NAMES)
def test_builds_through_the_pipeline_and_trains_one_step(case):
    params = dict(CASES[case])
    if case == "film":
        params["condition"] = "tabular"
    if case == "bottleneck_cls":
        params["readout"] = "cls"
    spec = {**SPEC, "model": {**SPEC["model"], "fusion": {"name": case.removesuffix("_cls")}}}
    spec["model"]["fusion"]["params"] = params
    pipe = build_pipeline(parse_spec(spec), load_plugins(warn=False).registry)
    model = pipe.model
    assert model.head.in_dim == model.fusion.output.dim
    # token fusions take the CNN's token sequence; the MLPs have none and stay pooled
    wants_tokens = case.startswith(("cross_attention", "bottleneck", "token_learner"))
    assert model.fusion.in_features["image"].tokens is wants_tokens
    assert not model.fusion.in_features["tabular"].tokens
    batch = next(iter(DataLoader(pipe.dataset.load("train"), batch_size=6)))
    out = model(batch)
    assert out["logits"].shape == (6, 3) and torch.isfinite(out["logits"]).all()
    pipe.loss(out, batch).total.backward()
    for name, p in model.fusion.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name

"""Fusions: sizing from declared inputs, masks, and gradients."""

from __future__ import annotations

import torch

from modalforge.contracts import FeatureSpec
from modalforge_fusion import ConcatFusion, MeanFusion

IN = {"image": FeatureSpec(4, tokens=True), "labs": FeatureSpec(3), "state": FeatureSpec(2)}


def _features(batch: int = 5) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {m: torch.randn(batch, f.dim) for m, f in IN.items()}


def test_concat_sizes_itself_and_concatenates_in_order():
    fusion = ConcatFusion(IN)
    feats = _features()
    assert fusion.output.dim == 9
    torch.testing.assert_close(fusion(feats), torch.cat(list(feats.values()), dim=1))


def test_fusions_ask_for_pooled_features_even_from_token_encoders():
    for fusion in (ConcatFusion(IN), MeanFusion(IN)):
        assert not any(f.tokens for f in fusion.in_features.values())
        assert {m: f.dim for m, f in fusion.in_features.items()} == {
            "image": 4,
            "labs": 3,
            "state": 2,
        }


def test_concat_zeroes_absent_modalities():
    fusion = ConcatFusion(IN)
    feats = _features()
    masks = {"labs": torch.tensor([True, False, True, False, True])}
    out = fusion(feats, masks)
    assert torch.equal(out[[1, 3], 4:7], torch.zeros(2, 3))
    torch.testing.assert_close(out[[0, 2, 4], 4:7], feats["labs"][[0, 2, 4]])
    torch.testing.assert_close(out[:, :4], feats["image"])  # no mask entry: present
    # whatever placeholder an absent modality held does not change the result
    feats["labs"][[1, 3]] = 1e6
    torch.testing.assert_close(fusion(feats, masks), out)


def test_concat_projection_and_token_inputs():
    fusion = ConcatFusion(IN, proj_dim=6)
    feats = _features()
    tokens = {**feats, "image": feats["image"].unsqueeze(1).repeat(1, 3, 1)}
    assert fusion.output.dim == 6
    torch.testing.assert_close(fusion(tokens), fusion(feats))


def test_mean_is_mask_aware_average_of_projections():
    fusion = MeanFusion(IN, dim=5)
    feats = _features()
    masks = {
        "image": torch.tensor([True, True, False, False, False]),
        "labs": torch.tensor([True, False, True, False, False]),
        "state": torch.tensor([True, True, True, True, False]),
    }
    out = fusion(feats, masks)
    proj = {m: fusion.proj[m](feats[m]) for m in IN}
    assert fusion.output.dim == 5
    torch.testing.assert_close(out[0], (proj["image"][0] + proj["labs"][0] + proj["state"][0]) / 3)
    torch.testing.assert_close(out[1], (proj["image"][1] + proj["state"][1]) / 2)
    torch.testing.assert_close(out[3], proj["state"][3])
    assert torch.equal(out[4], torch.zeros(5))  # nothing present: zeros, not NaN


def test_mean_default_width_is_widest_input():
    assert MeanFusion(IN).output.dim == 4


def test_gradients_reach_every_fusion_parameter():
    for fusion in (ConcatFusion(IN, proj_dim=3), MeanFusion(IN)):
        feats = {m: t.requires_grad_() for m, t in _features().items()}
        fusion(feats).square().sum().backward()
        for name, p in fusion.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        assert all(t.grad is not None for t in feats.values())

"""TokenLearner against its closed form, and ``token_learner`` fusion's token counts, readouts
and masking of absent modalities."""

from __future__ import annotations

import pytest
import torch

from modalforge.contracts import FeatureSpec
from modalforge_fusion import TokenLearner, TokenLearnerFusion


def test_token_learner_is_the_attention_weighted_mean_of_the_paper():
    torch.manual_seed(0)
    learner = TokenLearner(dim=6, num_tokens=3, hidden=5)
    x = torch.randn(2, 10, 6)
    scores = learner.score(torch.nn.functional.layer_norm(x, (6,), learner.norm.weight))
    a = scores.sigmoid()  # (B, N, S)
    expected = torch.stack(
        [torch.stack([(a[b, :, s, None] * x[b]).mean(0) for s in range(3)]) for b in range(2)]
    )
    torch.testing.assert_close(learner(x), expected)
    soft = TokenLearner(dim=6, num_tokens=3, hidden=5, attention="softmax")
    w = soft.weights(x)
    torch.testing.assert_close(w.sum(1), torch.ones(2, 3))  # a distribution over positions
    # one-hot attention picks a token out exactly
    with torch.no_grad():
        soft.score[-1].weight.zero_()
        soft.score[-1].bias.copy_(torch.tensor([0.0, 0.0, 0.0]))
    torch.testing.assert_close(soft(x), x.mean(1, keepdim=True).expand(-1, 3, -1))
    with pytest.raises(ValueError, match="attention"):
        TokenLearner(6, 2, attention="relu")


def test_fusion_reduces_token_modalities_and_keeps_pooled_ones_as_one_token():
    ins = {"image_front": FeatureSpec(12, tokens=True), "state": FeatureSpec(4)}
    torch.manual_seed(0)
    flat = TokenLearnerFusion(ins, dim=8, num_tokens=3, heads=2, layers=1, readout="flatten")
    assert flat.counts == {"image_front": 3, "state": 1} and flat.output.dim == 4 * 8
    feats = {"image_front": torch.randn(5, 64, 12), "state": torch.randn(5, 4)}
    assert flat(feats).shape == (5, 32)
    mean = TokenLearnerFusion(ins, dim=8, num_tokens=3, heads=2, layers=1)
    out = mean(feats)
    assert out.shape == (5, 8) and torch.isfinite(out).all()
    # any number of map positions: the learned tokens do not depend on the map size
    assert mean({**feats, "image_front": torch.randn(5, 9, 12)}).shape == (5, 8)


def test_an_absent_modality_drops_out_of_attention_and_readout():
    ins = {"image_front": FeatureSpec(6, tokens=True), "state": FeatureSpec(4)}
    torch.manual_seed(0)
    fusion = TokenLearnerFusion(ins, dim=8, num_tokens=2, heads=2, layers=2).eval()
    feats = {"image_front": torch.randn(3, 16, 6), "state": torch.randn(3, 4)}
    masks = {"state": torch.tensor([True, False, True])}
    out = fusion(feats, masks)
    # sample 1 without state equals a fusion run on the image tokens alone
    alone = fusion.learners["image_front"](fusion.proj["image_front"](feats["image_front"][1:2]))
    y = fusion.norm(fusion.encoder(alone + fusion.modality["image_front"]))
    torch.testing.assert_close(out[1:2], y.mean(1))

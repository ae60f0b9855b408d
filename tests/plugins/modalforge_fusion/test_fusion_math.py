"""Closed-form checks of the fusions: sizes, parameter shapes and what absence means."""

from __future__ import annotations

import math

import pytest
import torch

from modalforge.contracts import FeatureSpec
from modalforge_fusion import (
    BottleneckFusion,
    CrossAttentionFusion,
    FiLMFusion,
    GMUFusion,
    LateFusion,
    LowRankTensorFusion,
    MaxFusion,
    SumFusion,
    TensorFusion,
)
from modalforge_fusion.tensor import outer_flat

IN = {"image": FeatureSpec(4, tokens=True), "labs": FeatureSpec(3), "state": FeatureSpec(2)}
B = 6


def _feats(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(B, f.dim, generator=g) for m, f in IN.items()}


def _absent(name: str) -> dict[str, torch.Tensor]:
    return {name: torch.zeros(B, dtype=torch.bool)}


def _one(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, torch.ones(len(x), 1)], dim=1)


# sum / max ---------------------------------------------------------------------------------------


def test_sum_is_sum_of_projections_and_an_absent_one_adds_nothing():
    fusion = SumFusion(IN, dim=5)
    feats = _feats()
    proj = {m: fusion.proj[m](feats[m]) for m in IN}
    assert fusion.output.dim == 5 and fusion.proj["labs"].weight.shape == (5, 3)
    torch.testing.assert_close(fusion(feats), sum(proj.values()))
    pair = SumFusion({m: IN[m] for m in ("image", "state")}, dim=5)
    pair.proj["image"].load_state_dict(fusion.proj["image"].state_dict())
    pair.proj["state"].load_state_dict(fusion.proj["state"].state_dict())
    torch.testing.assert_close(fusion(feats, _absent("labs")), pair(feats))


def test_max_is_elementwise_max_over_present_projections():
    fusion = MaxFusion(IN, dim=5)
    feats = _feats()
    proj = {m: fusion.proj[m](feats[m]) for m in IN}
    assert MaxFusion(IN).output.dim == 4  # default: the widest input
    torch.testing.assert_close(fusion(feats), torch.stack(list(proj.values())).amax(0))
    torch.testing.assert_close(
        fusion(feats, _absent("image")), torch.maximum(proj["labs"], proj["state"])
    )
    nothing = {m: torch.zeros(B, dtype=torch.bool) for m in IN}
    assert torch.equal(fusion(feats, nothing), torch.zeros(B, 5))


# gmu ---------------------------------------------------------------------------------------------


def test_gmu_two_modalities_is_the_papers_sigmoid_gate():
    pair = {m: IN[m] for m in ("image", "labs")}
    fusion = GMUFusion(pair, dim=5)
    feats = _feats()
    assert fusion.gate.weight.shape == (5, 7)  # sigmoid gate from the concatenated inputs
    h_v = torch.tanh(feats["image"] @ fusion.hidden["image"].weight.T)
    h_t = torch.tanh(feats["labs"] @ fusion.hidden["labs"].weight.T)
    z = torch.sigmoid(fusion.gate(torch.cat([feats["image"], feats["labs"]], 1)))
    torch.testing.assert_close(fusion(feats), z * h_v + (1 - z) * h_t)
    # one absent: its gate is zeroed and the other's renormalised to one
    torch.testing.assert_close(fusion(feats, _absent("labs")), h_v)


def test_gmu_many_modalities_uses_a_softmax_over_modalities():
    fusion = GMUFusion(IN, dim=5)
    feats = _feats()
    assert fusion.gate.weight.shape == (3 * 5, 9)
    hs = torch.stack([torch.tanh(fusion.hidden[m](feats[m])) for m in IN], 1)
    z = fusion.gates(torch.cat(list(feats.values()), 1))
    torch.testing.assert_close(z.sum(1), torch.ones(B, 5))
    torch.testing.assert_close(fusion(feats), (z * hs).sum(1))
    masked = {**feats, "state": torch.zeros(B, 2)}
    z = fusion.gates(torch.cat(list(masked.values()), 1))[:, :2]
    expected = (z / z.sum(1, keepdim=True) * hs[:, :2]).sum(1)
    torch.testing.assert_close(fusion(feats, _absent("state")), expected)


# tensor (TFN) ------------------------------------------------------------------------------------


def test_tensor_fusion_is_the_outer_product_of_one_appended_vectors():
    fusion = TensorFusion(IN)
    feats = _feats()
    assert fusion.output.dim == 5 * 4 * 3 == math.prod(f.dim + 1 for f in IN.values())
    expected = torch.einsum(
        "bi,bj,bk->bijk", _one(feats["image"]), _one(feats["labs"]), _one(feats["state"])
    ).flatten(1)
    torch.testing.assert_close(fusion(feats), expected)
    # the unimodal terms survive: the all-ones corner picks out each modality's raw vector
    cube = fusion(feats).reshape(B, 5, 4, 3)
    torch.testing.assert_close(cube[:, :4, -1, -1], feats["image"])
    torch.testing.assert_close(cube[:, -1, -1, -1], torch.ones(B))


def test_tensor_fusion_with_an_absent_modality_is_the_rest_times_a_constant_one():
    fusion = TensorFusion(IN)
    feats = _feats()
    rest = TensorFusion({m: IN[m] for m in ("image", "state")})(feats)
    cube = fusion(feats, _absent("labs")).reshape(B, 5, 4, 3)
    assert torch.equal(cube[:, :, :3, :], torch.zeros(B, 5, 3, 3))
    torch.testing.assert_close(cube[:, :, 3, :].flatten(1), rest)


def test_tensor_fusion_projection_sizes_and_size_guard():
    fusion = TensorFusion(IN, dim=2, out_dim=7)
    assert fusion.product_size == 27 and fusion.output.dim == 7
    assert fusion.out.weight.shape == (7, 27) and fusion.proj["image"].weight.shape == (2, 4)
    too_big = r"125 features, more than max_features=100.*smaller `dim`"
    with pytest.raises(ValueError, match=too_big):
        TensorFusion(IN, dim=4, max_features=100)


# low-rank tensor (LMF) ---------------------------------------------------------------------------


def test_low_rank_factors_are_registered_parameters_of_the_right_shape():
    fusion = LowRankTensorFusion(IN, out_dim=5, rank=3)
    shapes = {n: tuple(p.shape) for n, p in fusion.named_parameters()}
    assert shapes == {
        "factors.0": (3, 5, 5),
        "factors.1": (3, 4, 5),
        "factors.2": (3, 3, 5),
        "fusion_weights": (1, 3),
        "bias": (1, 5),
    }
    assert fusion.output.dim == 5
    assert len(fusion.state_dict()) == 5  # saved with checkpoints, seen by the optimizer


@pytest.mark.parametrize("rank", [1, 3])
def test_low_rank_equals_the_explicit_tensor_contraction(rank):
    fusion = LowRankTensorFusion(IN, out_dim=5, rank=rank)
    feats = _feats()
    f1, f2, f3 = fusion.factors
    w = fusion.fusion_weights[0]
    weight = torch.einsum("r,rio,rjo,rko->ijko", w, f1, f2, f3).reshape(-1, 5)
    for masks in (None, _absent("labs")):
        tfn = TensorFusion(IN)(feats, masks)  # same (0..0,1) convention for absent modalities
        torch.testing.assert_close(fusion(feats, masks), tfn @ weight + fusion.bias)


def test_outer_flat_orders_like_einsum():
    a, b = torch.randn(2, 3), torch.randn(2, 4)
    torch.testing.assert_close(outer_flat([a, b]), torch.einsum("bi,bj->bij", a, b).flatten(1))


# film --------------------------------------------------------------------------------------------


def test_film_is_identity_at_init_and_affine_after():
    fusion = FiLMFusion(IN, condition="labs")
    feats = _feats()
    assert fusion.output.dim == 4 + 2
    assert fusion.film["image"].weight.shape == (8, 3) and "labs" not in fusion.film
    plain = torch.cat([feats["image"], feats["state"]], 1)
    torch.testing.assert_close(fusion(feats), plain)
    with_cond = FiLMFusion(IN, condition="labs", include_condition=True)
    assert with_cond.output.dim == 9
    torch.testing.assert_close(with_cond(feats), torch.cat([plain, feats["labs"]], 1))

    torch.manual_seed(3)
    for layer in fusion.film.values():
        torch.nn.init.normal_(layer.weight)
        torch.nn.init.normal_(layer.bias)
    gamma, beta = fusion.film["image"](feats["labs"]).chunk(2, dim=1)
    torch.testing.assert_close(fusion(feats)[:, :4], (1 + gamma) * feats["image"] + beta)
    # an absent condition modulates nothing
    torch.testing.assert_close(fusion(feats, _absent("labs")), plain)


def test_film_rejects_an_unknown_condition():
    with pytest.raises(ValueError, match="condition 'text' is not one of"):
        FiLMFusion(IN, condition="text")


# late --------------------------------------------------------------------------------------------


def test_late_mean_and_learned_weights():
    feats = _feats()
    mean = LateFusion(IN, dim=5)
    proj = {m: mean.proj[m](feats[m]) for m in IN}
    assert mean.output.dim == 5 and not list(p for n, p in mean.named_parameters() if "logit" in n)
    torch.testing.assert_close(mean(feats), sum(proj.values()) / 3)
    torch.testing.assert_close(mean(feats, _absent("image")), (proj["labs"] + proj["state"]) / 2)

    learned = LateFusion(IN, dim=5, mode="learned")
    learned.proj.load_state_dict(mean.proj.state_dict())
    torch.testing.assert_close(learned(feats), mean(feats))  # equal weights at init
    with torch.no_grad():
        learned.logits.copy_(torch.tensor([0.0, 1.0, 2.0]))
    w = torch.tensor([0.0, 1.0, 2.0]).softmax(0)
    expected = w[0] * proj["image"] + w[1] * proj["labs"] + w[2] * proj["state"]
    torch.testing.assert_close(learned(feats), expected)
    w2 = w[1:] / w[1:].sum()
    torch.testing.assert_close(
        learned(feats, _absent("image")), w2[0] * proj["labs"] + w2[1] * proj["state"]
    )


# cross attention / bottleneck -------------------------------------------------------------------


def test_cross_attention_requests_tokens_where_encoders_have_them():
    fusion = CrossAttentionFusion(IN, dim=8, heads=2)
    assert {m: f.tokens for m, f in fusion.in_features.items()} == {
        "image": True,
        "labs": False,
        "state": False,
    }
    assert fusion.output.dim == 3 * 8
    feats = _feats()
    one_token = {**feats, "image": feats["image"].unsqueeze(1)}
    torch.testing.assert_close(fusion(feats), fusion(one_token))  # pooled = length-1 sequence
    with pytest.raises(ValueError, match="divisible"):
        CrossAttentionFusion(IN, dim=6, heads=4)


def test_cross_attention_absent_target_slice_is_zero_and_lonely_query_sees_nothing():
    fusion = CrossAttentionFusion(IN, dim=8, heads=2, layers=1).eval()
    feats = _feats()
    out = fusion(feats, _absent("labs"))
    assert torch.equal(out[:, 8:16], torch.zeros(B, 8))
    # with every other modality absent, attention contributes only out_proj's bias
    others = {"labs": torch.zeros(B, dtype=torch.bool), "state": torch.zeros(B, dtype=torch.bool)}
    block = fusion.blocks["image"][0]
    x = fusion.proj["image"](feats["image"]).unsqueeze(1) + block.attn.out_proj.bias
    x = x + block.ff(block.norm_ff(x))
    torch.testing.assert_close(fusion(feats, others)[:, :8], x.mean(1))


def test_bottleneck_sizes_and_absent_everything_returns_learned_tokens():
    fusion = BottleneckFusion(IN, dim=8, heads=2, layers=2, num_bottlenecks=3).eval()
    assert fusion.output.dim == 8 and fusion.bottleneck.shape == (1, 3, 8)
    assert len(fusion.layers["image"]) == 2 and fusion.in_features["image"].tokens
    nothing = {m: torch.zeros(B, dtype=torch.bool) for m in IN}
    expected = fusion.bottleneck.mean(1).expand(B, -1)
    torch.testing.assert_close(fusion(_feats(), nothing), expected)
    cls = BottleneckFusion(IN, dim=8, heads=2, layers=1, readout="cls").eval()
    assert cls.output.dim == 24
    assert torch.equal(cls(_feats(), _absent("state"))[:, 16:], torch.zeros(B, 8))


def test_bottleneck_only_exchanges_through_the_bottleneck():
    """Within a layer a modality sees only the previous layer's bottleneck, never other tokens."""
    fusion = BottleneckFusion(IN, dim=8, heads=2, layers=1, readout="cls").eval()
    feats = _feats()
    changed = {**feats, "labs": feats["labs"] + 1.0}
    a, b = fusion(feats), fusion(changed)
    torch.testing.assert_close(a[:, :8], b[:, :8])  # image CLS: bottleneck read before update
    assert not torch.allclose(a[:, 8:16], b[:, 8:16])

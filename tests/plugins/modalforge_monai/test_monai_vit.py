"""monai_vit against MONAI's ViT, its token output in token fusions, and its spec errors."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from modalforge.errors import SpecError
from modalforge.modality import Modality
from modalforge.pipeline import build_pipeline
from modalforge.plugin import load_plugins
from modalforge.spec import parse_spec

nets = pytest.importorskip("monai.networks.nets")
pytest.importorskip("einops")
from modalforge_monai import MonaiViTEncoder  # noqa: E402

TINY = {"hidden_size": 16, "mlp_dim": 32, "num_layers": 1, "num_heads": 2}


@pytest.mark.parametrize(
    ("kind", "shape", "patch", "tokens"),
    [
        ("volume3d", (1, 16, 16, 16), 8, 8),
        ("volume3d", (2, 16, 8, 16), (4, 4, 8), 16),  # one patch size per axis
        ("image2d", (3, 16, 16), 4, 16),
        ("image2d", (1, 32, 16), 8, 8),
    ],
)
def test_tokens_and_pooled_match_monai_vit(kind, shape, patch, tokens):
    enc = MonaiViTEncoder(Modality("m", kind, shape), patch_size=patch, output="tokens", **TINY)
    enc.eval()
    ref = nets.ViT(
        in_channels=shape[0],
        img_size=shape[1:],
        patch_size=patch,
        classification=False,
        spatial_dims=len(shape) - 1,
        **TINY,
    ).eval()
    ref.load_state_dict(enc.net.state_dict())
    x = torch.randn(2, *shape)
    with torch.no_grad():
        expected = ref(x)[0]
        got_tokens, got_pooled = enc.forward_tokens(x), enc(x)
    assert enc.output.dim == 16 and enc.output.tokens and enc.num_tokens == tokens
    assert got_tokens.shape == (2, tokens, 16) and got_pooled.shape == (2, 16)
    torch.testing.assert_close(got_tokens, expected)
    torch.testing.assert_close(got_pooled, expected.mean(dim=1))  # pooled: mean of the tokens


def test_pooled_output_declares_no_tokens_and_projects():
    enc = MonaiViTEncoder(Modality("ct", "volume3d", (1, 8, 8, 8)), patch_size=4, out_dim=5, **TINY)
    assert enc.output.dim == 5 and not enc.output.tokens
    assert enc(torch.randn(3, 1, 8, 8, 8)).shape == (3, 5)
    with pytest.raises(NotImplementedError, match="output: tokens"):
        enc.forward_tokens(torch.randn(1, 1, 8, 8, 8))


def test_tokens_are_projected_token_wise():
    enc = MonaiViTEncoder(
        Modality("ct", "volume3d", (1, 8, 8, 8)), patch_size=4, out_dim=6, output="tokens", **TINY
    ).eval()
    x = torch.randn(2, 1, 8, 8, 8)
    with torch.no_grad():
        raw = enc.net(x)[0]
        torch.testing.assert_close(enc.forward_tokens(x), enc.proj(raw))
    assert enc.output.dim == 6


def test_gradients_reach_the_patch_embedding():
    enc = MonaiViTEncoder(Modality("ct", "volume3d", (2, 8, 8, 8)), patch_size=4, **TINY)
    enc(torch.randn(2, 2, 8, 8, 8)).square().sum().backward()
    first = enc.net.patch_embedding.patch_embeddings.weight
    assert first.shape[1] == 2 and first.grad is not None and first.grad.abs().sum() > 0
    for name, p in enc.named_parameters():  # MONAI's unused cross-attention norms are locked
        assert (p.grad is not None) is p.requires_grad, name
        assert p.requires_grad or "norm_cross_attn" in name, name


def test_metatensor_input_gives_a_plain_tensor():
    from monai.data import MetaTensor

    enc = MonaiViTEncoder(Modality("ct", "volume3d", (1, 8, 8, 8)), patch_size=4, **TINY).eval()
    x = torch.randn(1, 1, 8, 8, 8)
    with torch.no_grad():
        out = enc(MetaTensor(x))
    assert type(out) is torch.Tensor
    torch.testing.assert_close(out, enc(x).detach())


def test_indivisible_size_names_patch_size_and_the_axis():
    with pytest.raises(SpecError) as err:
        MonaiViTEncoder(Modality("ct", "volume3d", (1, 16, 12, 16)), patch_size=8, **TINY)
    msg = str(err.value)
    assert msg.startswith("model.encoders.ct.params.patch_size: patch_size 8 does not divide")
    assert "16×12×16" in msg and "axis 1: 12 % 8 = 4" in msg and "fix:" in msg


def test_variable_axis_and_wrong_patch_count_and_heads_are_spec_errors():
    with pytest.raises(SpecError, match=r"^model\.encoders\.ct: .*fixed spatial size.*1×\?×8×8"):
        MonaiViTEncoder(Modality("ct", "volume3d", (1, None, 8, 8)), patch_size=4, **TINY)
    with pytest.raises(SpecError, match=r"params\.patch_size: gives 2 sizes.* 3 spatial axes"):
        MonaiViTEncoder(Modality("ct", "volume3d", (1, 8, 8, 8)), patch_size=(4, 4), **TINY)
    with pytest.raises(
        SpecError, match=r"params\.num_heads: hidden_size 16 is not divisible by num_heads 3"
    ):
        MonaiViTEncoder(
            Modality("ct", "volume3d", (1, 8, 8, 8)), patch_size=4, **{**TINY, "num_heads": 3}
        )


def _spec(fusion: dict, volume_size: int = 16, patch_size: int = 8) -> dict:
    return {
        "name": "vit-tokens",
        "data": {
            "dataset": {
                "name": "synthetic",
                "params": {
                    "num_samples": 12,
                    "num_classes": 3,
                    "image2d_size": None,
                    "volume_size": volume_size,
                    "tabular_features": 5,
                    "missing_prob": 0.3,
                },
            },
            "batch_size": 6,
        },
        "model": {
            "encoders": {
                "volume": {
                    "name": "monai_vit",
                    "params": {"patch_size": patch_size, "output": "tokens", **TINY},
                },
                "tabular": {"name": "mlp", "params": {"hidden_dims": [8], "out_dim": 6}},
            },
            "fusion": fusion,
            "head": {"name": "classification", "params": {"hidden_dims": []}},
        },
        "loss": "cross_entropy",
    }


@pytest.mark.parametrize(
    "fusion",
    [
        {"name": "cross_attention", "params": {"dim": 8, "heads": 2, "layers": 1}},
        {"name": "bottleneck", "params": {"dim": 8, "heads": 2, "layers": 1}},
    ],
)
def test_token_fusions_attend_over_volume_patches(fusion):
    pipe = build_pipeline(parse_spec(_spec(fusion)), load_plugins(warn=False).registry)
    model = pipe.model
    assert model.fusion.in_features["volume"].tokens  # sized from the declared FeatureSpec
    assert model.fusion.in_features["volume"].dim == 16
    assert not model.fusion.in_features["tabular"].tokens
    seen = {}
    model.fusion.register_forward_hook(
        lambda m, args, out: seen.update({k: v.shape for k, v in args[0].items()})
    )
    batch = next(iter(DataLoader(pipe.dataset.load("train"), batch_size=6)))
    out = model(batch)
    assert seen["volume"] == (6, 8, 16)  # (16/8)³ patch tokens reached the fusion
    assert seen["tabular"] == (6, 6)
    assert out["logits"].shape == (6, 3) and torch.isfinite(out["logits"]).all()
    pipe.loss(out, batch).total.backward()
    first = model.encoders["volume"].net.patch_embedding.patch_embeddings.weight
    assert first.grad is not None and first.grad.abs().sum() > 0


def test_indivisible_volume_is_a_spec_error_from_the_spec():
    spec = _spec({"name": "cross_attention", "params": {"dim": 8, "heads": 2}}, volume_size=12)
    with pytest.raises(SpecError, match=r"model\.encoders\.volume\.params\.patch_size: .*12×12×12"):
        build_pipeline(parse_spec(spec), load_plugins(warn=False).registry)

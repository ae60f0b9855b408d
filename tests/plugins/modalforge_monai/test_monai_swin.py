"""monai_swin against SwinUNETR's own Swin encoder (``swinViT``), its sizing and spec errors."""

from __future__ import annotations

import pytest
import torch

from modalforge.errors import SpecError
from modalforge.modality import Modality

nets = pytest.importorskip("monai.networks.nets")
pytest.importorskip("einops")
from modalforge_monai import MonaiSwinEncoder  # noqa: E402

TINY = {"feature_size": 12, "depths": (1, 1, 1, 1), "num_heads": (1, 2, 2, 4), "window_size": 4}


def _swinunetr(spatial_dims: int, channels: int) -> torch.nn.Module:
    return nets.SwinUNETR(
        in_channels=channels,
        out_channels=2,
        feature_size=12,
        depths=(1, 1, 1, 1),
        num_heads=(1, 2, 2, 4),
        window_size=4,
        spatial_dims=spatial_dims,
    )


@pytest.mark.parametrize(
    ("kind", "shape"), [("volume3d", (1, 32, 32, 32)), ("image2d", (3, 32, 64))]
)
def test_pooled_maps_match_swinunetr_encoder(kind, shape):
    enc = MonaiSwinEncoder(Modality("m", kind, shape), **TINY).eval()
    ref = _swinunetr(len(shape) - 1, shape[0]).swinViT.eval()
    ref.load_state_dict(enc.net.state_dict())
    x = torch.randn(2, *shape)
    with torch.no_grad():
        maps = ref(x, normalize=True)
        got = enc(x)
    # five maps at 1/2 … 1/32 resolution with 12·(1, 2, 4, 8, 16) channels, each averaged
    assert [m.shape[1] for m in maps] == [12, 24, 48, 96, 192]
    assert maps[4].shape[2:] == tuple(s // 32 for s in shape[1:])
    expected = torch.cat([m.flatten(2).mean(2) for m in maps], dim=1)
    assert enc.output.dim == 12 * 31 == got.shape[1]
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize(
    ("stages", "dim", "v2"),
    [((4,), 192, False), ((1, 3), 24 + 96, True), ((0, 1, 2, 3, 4), 372, True), ((0,), 12, False)],
)
def test_stages_choose_the_maps_and_size_the_output(stages, dim, v2):
    enc = MonaiSwinEncoder(
        Modality("xray", "image2d", (2, 32, 32)), stages=stages, use_v2=v2, **TINY
    )
    assert enc.output.dim == dim and not enc.output.tokens
    x = torch.randn(2, 2, 32, 32)
    out = enc(x)
    with torch.no_grad():  # against MONAI's own forward through all five maps
        maps = enc.net(x, normalize=True)
    expected = torch.cat([maps[s].flatten(2).mean(2) for s in stages], dim=1)
    assert out.shape == (2, dim)
    torch.testing.assert_close(out.detach(), expected)
    out.square().sum().backward()
    for name, p in enc.net.named_parameters():  # stages past the deepest chosen are locked
        stage = int(name[6]) if name.startswith("layers") else 0
        used = stage <= max(stages)
        assert p.requires_grad is used and (p.grad is not None) is used, name


def test_projection_and_gradients_reach_the_patch_embedding():
    enc = MonaiSwinEncoder(Modality("ct", "volume3d", (2, 32, 32, 32)), out_dim=5, **TINY)
    out = enc(torch.randn(2, 2, 32, 32, 32))
    assert out.shape == (2, 5) and enc.output.dim == 5
    out.square().sum().backward()
    first = enc.net.patch_embed.proj.weight
    assert first.shape[1] == 2 and first.grad is not None and first.grad.abs().sum() > 0
    for name, p in enc.named_parameters():
        assert p.grad is not None, name


def test_default_width_is_744_like_swinunetr():
    enc = MonaiSwinEncoder(Modality("xray", "image2d", (1, 32, 32))).eval()
    with torch.no_grad():
        out = enc(torch.randn(1, 1, 32, 32))
    assert enc.output.dim == 24 * 31 == 744 and tuple(out.shape) == (1, 744)


def test_size_not_divisible_by_32_is_a_spec_error():
    with pytest.raises(SpecError) as err:
        MonaiSwinEncoder(Modality("ct", "volume3d", (1, 32, 48, 32)), **TINY)
    msg = str(err.value)
    assert msg.startswith("model.encoders.ct: monai_swin needs every spatial axis divisible by 32")
    assert "1×32×48×32" in msg and "has 48" in msg and "fix:" in msg


def test_bad_sizes_name_the_field():
    volume = Modality("ct", "volume3d", (1, 32, 32, 32))
    with pytest.raises(SpecError, match=r"params\.num_heads: stage 1 has width .* = 24, .* = 5"):
        MonaiSwinEncoder(volume, **{**TINY, "num_heads": (1, 5, 2, 4)})
    with pytest.raises(SpecError, match=r"params\.stages: must name feature maps among 0–4"):
        MonaiSwinEncoder(volume, **{**TINY, "stages": (2, 5)})
    with pytest.raises(SpecError, match=r"^model\.encoders\.ct: .*fixed spatial size"):
        MonaiSwinEncoder(Modality("ct", "volume3d", (1, 32, None, 32)), **TINY)

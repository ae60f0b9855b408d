"""The monai_net encoder against the MONAI networks it wraps."""

from __future__ import annotations

import pytest
import torch

from modalforge.modality import Modality

nets = pytest.importorskip("monai.networks.nets")
from modalforge_monai import NETWORKS, MonaiNetEncoder  # noqa: E402

VOLUME = Modality("ct", "volume3d", (1, 16, 16, 16))


def test_resnet10_on_a_volume_matches_the_monai_net():
    enc = MonaiNetEncoder(VOLUME, network="resnet10").eval()
    ref = nets.resnet10(pretrained=False, spatial_dims=3, n_input_channels=1, feed_forward=False)
    ref.load_state_dict(enc.net.state_dict())
    ref.eval()
    x = torch.randn(2, 1, 16, 16, 16)
    with torch.no_grad():
        got, expected = enc(x), ref(x)
    assert enc.output.dim == 512 and got.shape == (2, 512)
    torch.testing.assert_close(got, expected)


def test_densenet_on_2d_image_with_projection_matches_monai():
    image = Modality("xray", "image2d", (2, 32, 32))
    enc = MonaiNetEncoder(image, network="densenet121", out_dim=8).eval()
    ref = nets.DenseNet121(spatial_dims=2, in_channels=2, out_channels=1, pretrained=False)
    ref.class_layers.out = torch.nn.Identity()
    ref.load_state_dict(enc.net.state_dict())
    ref.eval()
    x = torch.randn(2, 2, 32, 32)
    with torch.no_grad():
        expected = enc.proj(ref(x))
        got = enc(x)
    assert enc.output.dim == 8
    torch.testing.assert_close(got, expected)


def test_metatensor_input_gives_a_plain_tensor():
    from monai.data import MetaTensor

    enc = MonaiNetEncoder(VOLUME, network="resnet10").eval()
    x = torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad():
        out = enc(MetaTensor(x))
        plain = enc(x)
    assert type(out) is torch.Tensor
    torch.testing.assert_close(out, plain)


def test_pretrained_is_always_passed_false(monkeypatch):
    seen = {}
    original = nets.resnet10

    def spy(**kwargs):
        seen.update(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(nets, "resnet10", spy)
    MonaiNetEncoder(VOLUME, network="resnet10")
    assert seen["pretrained"] is False


def test_network_choices_exist_in_monai():
    for name in NETWORKS:
        assert hasattr(nets, name) or hasattr(nets, name.replace("densenet", "DenseNet"))


def test_gradients_reach_every_parameter():
    enc = MonaiNetEncoder(Modality("ct", "volume3d", (1, 8, 8, 8)), network="resnet10", out_dim=4)
    enc(torch.randn(2, 1, 8, 8, 8)).square().sum().backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None, name

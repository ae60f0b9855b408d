"""The monai_net encoder against the MONAI networks it wraps."""

from __future__ import annotations

import pytest
import torch

from modalforge.errors import SpecError
from modalforge.modality import Modality

nets = pytest.importorskip("monai.networks.nets")
from modalforge_monai import NETWORKS, MonaiNetEncoder  # noqa: E402
from modalforge_monai.nets import DENSENETS  # noqa: E402

VOLUME = Modality("ct", "volume3d", (1, 16, 16, 16))

# the pooled width of each family, from the papers' architectures (MONAI follows them)
WIDTHS = {
    "densenet121": 1024,
    "densenet169": 1664,
    "densenet201": 1920,
    "densenet264": 2688,
    "resnet10": 512,
    "resnet18": 512,
    "resnet34": 512,
    "resnet50": 2048,
    "resnet101": 2048,
    "resnet152": 2048,
    "resnet200": 2048,
    "efficientnet-b0": 1280,
    "efficientnet-b1": 1280,
    "efficientnet-b2": 1408,
    "efficientnet-b3": 1536,
    "efficientnet-b4": 1792,
    "efficientnet-b5": 2048,
    "efficientnet-b6": 2304,
    "efficientnet-b7": 2560,
}


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


def test_efficientnet_matches_monai_efficientnet_bn_before_its_classifier():
    image = Modality("xray", "image2d", (3, 32, 32))
    enc = MonaiNetEncoder(image, network="efficientnet-b0").eval()
    ref = nets.EfficientNetBN(
        "efficientnet-b0", pretrained=False, spatial_dims=2, in_channels=3, num_classes=5
    )
    missing, unexpected = ref.load_state_dict(enc.net.state_dict(), strict=False)
    assert sorted(missing) == ["_fc.bias", "_fc.weight"] and not unexpected
    ref.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = {}
        ref._fc.register_forward_hook(lambda m, i, o: feats.update(x=i[0]))
        ref(x)
        got = enc(x)
    assert got.shape == (2, 1280)
    torch.testing.assert_close(got, feats["x"])


def test_metatensor_input_gives_a_plain_tensor():
    from monai.data import MetaTensor

    enc = MonaiNetEncoder(VOLUME, network="resnet10").eval()
    x = torch.randn(1, 1, 16, 16, 16)
    with torch.no_grad():
        out = enc(MetaTensor(x))
        plain = enc(x)
    assert type(out) is torch.Tensor
    torch.testing.assert_close(out, plain)


@pytest.mark.parametrize("factory", ["resnet10", "DenseNet121", "EfficientNetBN"])
def test_pretrained_is_always_passed_false(monkeypatch, factory):
    seen = {}
    original = getattr(nets, factory)

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(nets, factory, spy)
    network = {"resnet10": "resnet10", "DenseNet121": "densenet121"}.get(factory, "efficientnet-b0")
    with torch.device("meta"):  # only the call matters: no memory, no initialisation
        MonaiNetEncoder(Modality("x", "image2d", (1, 32, 32)), network=network)
    assert seen["pretrained"] is False


def test_network_choices_exist_in_monai():
    assert set(NETWORKS) == set(WIDTHS)
    for name in NETWORKS:
        if name.startswith("efficientnet-"):
            assert name in nets.efficientnet.efficientnet_params
        else:
            assert hasattr(nets, DENSENETS.get(name, name)), name


# Every network in 3-D, and one per family (plus the largest) in 2-D: built and run on the meta
# device (shapes only, no compute), so even DenseNet264 and EfficientNet-B7 cost little.
SIZING = [(n, "volume3d", (2, 32, 32, 32)) for n in NETWORKS] + [
    (n, "image2d", (3, 32, 32))
    for n in (
        "densenet121",
        "densenet264",
        "resnet18",
        "resnet50",
        "efficientnet-b0",
        "efficientnet-b7",
    )
]


@pytest.mark.parametrize(("network", "kind", "shape"), SIZING)
def test_every_network_is_sized_from_the_modality(network, kind, shape):
    modality = Modality("m", kind, shape)
    with torch.device("meta"):
        enc = MonaiNetEncoder(modality, network=network)
        out = enc(torch.empty(2, *shape))
    assert enc.output.dim == WIDTHS[network]
    assert tuple(out.shape) == (2, WIDTHS[network])
    first = next(p for p in enc.net.parameters() if p.ndim == len(shape) + 1)
    assert first.shape[1] == shape[0]  # the first convolution reads the modality's channels


# Real compute for one network per family, in 2-D and 3-D and two channel counts.
@pytest.mark.parametrize(
    ("network", "kind", "shape"),
    [
        ("resnet10", "volume3d", (2, 8, 8, 8)),
        ("resnet18", "image2d", (1, 16, 16)),
        ("densenet121", "image2d", (3, 32, 32)),
        ("efficientnet-b0", "image2d", (1, 32, 32)),
    ],
)
def test_gradients_reach_the_first_layer(network, kind, shape):
    enc = MonaiNetEncoder(Modality("m", kind, shape), network=network, out_dim=4)
    out = enc(torch.randn(2, *shape))
    assert out.shape == (2, 4) and enc.output.dim == 4
    out.square().sum().backward()
    first_name, first = next(iter(enc.net.named_parameters()))
    assert first.grad is not None and first.grad.abs().sum() > 0, first_name
    for name, p in enc.named_parameters():
        assert p.grad is not None, name


def test_bad_dropout_and_out_dim_name_the_field():
    with pytest.raises(SpecError, match=r"model\.encoders\.ct\.params\.dropout"):
        MonaiNetEncoder(VOLUME, network="resnet10", dropout=1.0)
    with pytest.raises(SpecError, match=r"model\.encoders\.ct\.params\.out_dim"):
        MonaiNetEncoder(VOLUME, network="resnet10", out_dim=0)


@pytest.mark.parametrize("network", ["densenet121", "efficientnet-b0"])
def test_too_small_an_input_for_densenet_or_efficientnet_is_a_spec_error(network):
    small = Modality("ct", "volume3d", (1, 32, 16, 32))
    with pytest.raises(SpecError, match=r"model\.encoders\.ct: .* at least 32.* has 16") as err:
        MonaiNetEncoder(small, network=network)
    assert "resize" in str(err.value)

"""Local weights for the MONAI encoders: files, bundles, prefixes, refusals and mismatches."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from modalforge.errors import CheckpointError, SpecError
from modalforge.modality import Modality

nets = pytest.importorskip("monai.networks.nets")
pytest.importorskip("einops")
from modalforge_monai import MonaiNetEncoder, MonaiSwinEncoder, MonaiViTEncoder  # noqa: E402

VOLUME = Modality("ct", "volume3d", (1, 8, 8, 8))
VIT = {"patch_size": 4, "hidden_size": 16, "mlp_dim": 32, "num_layers": 1, "num_heads": 2}
SWIN = {"feature_size": 12, "depths": (1, 1, 1, 1), "num_heads": (1, 2, 2, 4), "window_size": 4}


def _vit(**kw) -> MonaiViTEncoder:
    return MonaiViTEncoder(kw.pop("modality", VOLUME), **{**VIT, **kw}).eval()


def _same(a: torch.nn.Module, b: torch.nn.Module, shape: tuple[int, ...]) -> None:
    x = torch.randn(2, *shape)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x))


def _bundle(root, name: str, state) -> str:
    (root / "models").mkdir(parents=True)
    (root / "configs").mkdir()
    if name.endswith(".safetensors"):
        save_file(state, str(root / "models" / name))
    else:
        torch.save(state, root / "models" / name)
    return str(root)


@pytest.mark.parametrize("form", ["pt", "pth", "bin", "safetensors", "bundle", "bundle-st"])
def test_round_trip_gives_the_same_outputs(tmp_path, form):
    source = _vit()
    state = {k: v.contiguous() for k, v in source.net.state_dict().items()}
    if form == "bundle":
        path = _bundle(tmp_path / "bundle", "model.pt", state)
    elif form == "bundle-st":
        path = _bundle(tmp_path / "bundle", "model.safetensors", state)
    elif form == "safetensors":
        path = str(tmp_path / "vit.safetensors")
        save_file(state, path)
    else:
        path = str(tmp_path / f"vit.{form}")
        torch.save(state, path)
    loaded = _vit(weights=path)
    fresh = _vit()
    _same(loaded, source, VOLUME.shape)
    x = torch.randn(1, *VOLUME.shape)
    with torch.no_grad():
        assert not torch.allclose(fresh(x), source(x))  # the weights did something


def test_full_network_with_classifier_and_wrapper_prefix(tmp_path):
    """A MONAI ResNet trained as a classifier (``fc``), saved from a DDP model (``module.``)."""
    image = Modality("xray", "image2d", (1, 16, 16))
    full = nets.resnet10(spatial_dims=2, n_input_channels=1, num_classes=3, pretrained=False)
    path = tmp_path / "classifier.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in full.state_dict().items()}}, path)
    enc = MonaiNetEncoder(image, network="resnet10", weights=str(path)).eval()
    full.fc = torch.nn.Identity()
    _same(enc, full.eval(), image.shape)


def test_densenet_classifier_keys_are_dropped(tmp_path):
    image = Modality("xray", "image2d", (1, 32, 32))
    full = nets.DenseNet121(spatial_dims=2, in_channels=1, out_channels=4, pretrained=False)
    path = tmp_path / "densenet.safetensors"
    save_file(full.state_dict(), str(path))
    enc = MonaiNetEncoder(image, network="densenet121", weights=str(path)).eval()
    full.class_layers.out = torch.nn.Identity()
    _same(enc, full.eval(), image.shape)


def test_swinunetr_state_dict_gives_its_encoder(tmp_path):
    volume = Modality("ct", "volume3d", (1, 32, 32, 32))
    unetr = nets.SwinUNETR(
        in_channels=1,
        out_channels=2,
        feature_size=12,
        depths=(1, 1, 1, 1),
        num_heads=(1, 2, 2, 4),
        window_size=4,
    )
    bundle = _bundle(tmp_path / "swin_bundle", "model.pt", unetr.state_dict())
    enc = MonaiSwinEncoder(volume, weights=bundle, **SWIN).eval()
    for k, v in unetr.swinViT.state_dict().items():
        torch.testing.assert_close(enc.net.state_dict()[k], v)


def test_encoder_state_dict_with_projection_round_trips(tmp_path):
    source = _vit(out_dim=3)
    path = tmp_path / "encoder.pt"
    torch.save(source.state_dict(), path)  # "net.*" and "proj.*", as modalforge saves it
    loaded = _vit(out_dim=3, weights=str(path))
    _same(loaded, source, VOLUME.shape)
    with pytest.raises(CheckpointError, match=r"2 unexpected: proj\.weight, proj\.bias"):
        _vit(weights=str(path))  # no out_dim here: the file's projection has nowhere to go


def test_pickled_module_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "whole_model.pt"
    torch.save(_vit().net, path)  # a pickled nn.Module, not a state dict
    with pytest.raises(CheckpointError) as err:
        _vit(weights=str(path))
    msg = str(err.value)
    assert msg.startswith("model.encoders.ct.params.weights: ")
    assert str(path) in msg and "pickled Python objects" in msg and "does not unpickle" in msg


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    state = _vit(num_layers=2).net.state_dict()
    state["extra.weight"] = torch.zeros(2)
    path = tmp_path / "two_layers.pt"
    torch.save(state, path)
    one_layer = dict(_vit().net.state_dict())
    del one_layer["norm.weight"]
    path2 = tmp_path / "no_norm.safetensors"
    save_file({k: v.contiguous() for k, v in one_layer.items()}, str(path2))

    with pytest.raises(CheckpointError) as err:
        _vit(weights=str(path))
    msg = str(err.value)
    assert msg.startswith(f"model.encoders.ct.params.weights: {path} does not fit the MONAI ViT")
    n = sum(k.startswith("blocks.1.") for k in state) + 1  # the second block, and extra.weight
    assert f"{n} unexpected: blocks.1." in msg and f"and {n - 4} more" in msg
    assert "missing:" not in msg and "shape:" not in msg
    with pytest.raises(CheckpointError, match=r"1 missing: norm\.weight\)"):
        _vit(weights=str(path2))


def test_shape_mismatch_lists_key_and_both_shapes(tmp_path):
    path = tmp_path / "one_channel.pt"
    torch.save(_vit().net.state_dict(), path)
    two_channels = Modality("ct", "volume3d", (2, 8, 8, 8))
    with pytest.raises(CheckpointError) as err:
        _vit(modality=two_channels, weights=str(path))
    msg = str(err.value)
    assert str(path) in msg and "1 shape: " in msg
    assert (
        "patch_embedding.patch_embeddings.weight (16, 1, 4, 4, 4) in the file, "
        "(16, 2, 4, 4, 4) in the encoder" in msg
    )
    assert "input channels" in msg  # the hint says which settings to match


def test_another_architecture_is_named_as_such(tmp_path):
    path = tmp_path / "vit.pt"
    torch.save(_vit().net.state_dict(), path)
    with pytest.raises(CheckpointError, match="another architecture"):
        MonaiSwinEncoder(Modality("ct", "volume3d", (1, 32, 32, 32)), weights=str(path), **SWIN)


def test_path_errors_are_spec_errors(tmp_path):
    with pytest.raises(SpecError, match=r"params\.weights: weights file .*nope\.pt does not exist"):
        _vit(weights=str(tmp_path / "nope.pt"))
    (tmp_path / "not_a_bundle" / "models").mkdir(parents=True)
    (tmp_path / "not_a_bundle" / "models" / "model.ts").write_bytes(b"PK")
    with pytest.raises(SpecError) as err:
        _vit(weights=str(tmp_path / "not_a_bundle"))
    msg = str(err.value)
    assert "is not a MONAI bundle with weights" in msg and "models/model.pt" in msg
    assert "TorchScript" in msg
    (tmp_path / "w.npy").write_bytes(b"x")
    with pytest.raises(SpecError, match="unknown suffix"):
        _vit(weights=str(tmp_path / "w.npy"))


def test_unetr_state_dict_gives_its_vit(tmp_path):
    volume = Modality("ct", "volume3d", (1, 32, 32, 32))
    unetr = nets.UNETR(
        in_channels=1,
        out_channels=2,
        img_size=(32, 32, 32),
        feature_size=4,
        hidden_size=16,
        mlp_dim=32,
        num_heads=2,
    )  # UNETR's ViT: patches of 16, 12 layers
    path = tmp_path / "unetr.pt"
    torch.save(unetr.state_dict(), path)
    params = {**VIT, "patch_size": 16, "num_layers": 12}
    enc = MonaiViTEncoder(volume, output="tokens", weights=str(path), **params).eval()
    x = torch.randn(2, 1, 32, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(enc.forward_tokens(x), unetr.vit.eval()(x)[0])

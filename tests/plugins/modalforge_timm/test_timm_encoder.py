"""The timm encoder against timm itself, local weight loading and its error messages."""

from __future__ import annotations

import pytest
import torch

from modalforge.errors import CheckpointError, SpecError
from modalforge.modality import Modality

timm = pytest.importorskip("timm")
from modalforge_timm import TimmEncoder  # noqa: E402

GRAY = Modality("image", "image2d", (1, 32, 32))
RGB = Modality("image", "image2d", (3, 32, 32))


def _reference(name: str, in_chans: int, **kwargs) -> torch.nn.Module:
    torch.manual_seed(123)  # different init from the encoder's, so equality means weights moved
    return timm.create_model(name, pretrained=False, num_classes=0, in_chans=in_chans, **kwargs)


@pytest.mark.parametrize(
    ("name", "modality", "kwargs"),
    [
        ("test_resnet", GRAY, {}),
        ("test_vit", RGB, {"img_size": 32}),  # ViTs get the modality's size automatically
        ("test_convnext", Modality("depth", "depth", (1, 64, 48)), {}),
    ],
)
def test_features_equal_timm_model_with_same_weights(name, modality, kwargs):
    enc = TimmEncoder(modality, model_name=name).eval()
    ref = _reference(name, modality.channels, **kwargs).eval()
    ref.load_state_dict(enc.model.state_dict())
    x = torch.randn(2, *modality.shape)
    with torch.no_grad():
        expected = ref(x)
        got = enc(x)
    assert enc.output.dim == ref.num_features == got.shape[1]
    torch.testing.assert_close(got, expected)


def test_tokens_from_vit_and_from_feature_maps():
    vit = TimmEncoder(RGB, model_name="test_vit", proj_dim=10).eval()
    x = torch.randn(2, 3, 32, 32)
    tokens = vit.forward_tokens(x)
    # test_vit: patch 16 at 32x32 -> 4 patches + 1 class token, projected to 10
    assert vit.output.tokens and vit.output.dim == 10
    assert tokens.shape == (2, 5, 10)
    cnn = TimmEncoder(GRAY, model_name="test_resnet").eval()
    with torch.no_grad():
        fmap = cnn.model.forward_features(torch.randn(2, 1, 32, 32))
        toks = cnn.forward_tokens(torch.randn(2, 1, 32, 32))
    assert toks.shape == (2, fmap.shape[2] * fmap.shape[3], fmap.shape[1])


def test_pre_logits_models_declare_no_tokens():
    enc = TimmEncoder(GRAY, model_name="test_mambaout")
    assert enc.output.dim == enc.model.head_hidden_size != enc.model.num_features
    assert not enc.output.tokens
    assert enc(torch.randn(2, 1, 32, 32)).shape == (2, enc.output.dim)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_weights_file_loads_local_weights(tmp_path, suffix):
    ref = _reference("test_resnet", 1)
    path = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(ref.state_dict(), str(path))
    else:
        torch.save(ref.state_dict(), path)
    enc = TimmEncoder(GRAY, model_name="test_resnet", weights_file=str(path))
    got = enc.model.state_dict()
    assert got.keys() == ref.state_dict().keys()
    for key, value in ref.state_dict().items():
        torch.testing.assert_close(got[key], value, msg=key)


def test_weights_saved_with_three_channels_are_adapted_to_grayscale(tmp_path):
    from safetensors.torch import save_file

    ref = _reference("test_resnet", 3)
    save_file(ref.state_dict(), str(tmp_path / "rgb.safetensors"))
    enc = TimmEncoder(
        GRAY, model_name="test_resnet", weights_file=str(tmp_path / "rgb.safetensors")
    )
    stem = ref.state_dict()["conv1.0.weight"]
    torch.testing.assert_close(enc.model.state_dict()["conv1.0.weight"], stem.sum(1, keepdim=True))


def test_missing_weights_file_is_a_spec_error_naming_the_param(tmp_path):
    with pytest.raises(
        SpecError, match=r"model\.encoders\.image\.params\.weights_file.*does not exist"
    ):
        TimmEncoder(GRAY, model_name="test_resnet", weights_file=str(tmp_path / "nope.safetensors"))


def test_weights_of_another_architecture_are_rejected(tmp_path, caplog):
    from safetensors.torch import save_file

    save_file(_reference("test_vit", 1).state_dict(), str(tmp_path / "vit.safetensors"))
    with pytest.raises(
        CheckpointError, match=r"weights_file.*vit\.safetensors lacks 90 of .*holds blocks\.0"
    ):
        TimmEncoder(GRAY, model_name="test_resnet", weights_file=str(tmp_path / "vit.safetensors"))
    # refused before timm's loader runs, which would first log every unexpected key
    assert not [r for r in caplog.records if "Unexpected keys" in r.getMessage()]


def _damaged(tmp_path, kind: str):
    ref = _reference("test_resnet", 1).state_dict()
    if kind == "empty":
        path = tmp_path / "w.safetensors"
        path.write_bytes(b"")
    elif kind == "truncated":
        from safetensors.torch import save_file

        path = tmp_path / "w.safetensors"
        save_file(ref, str(path))
        path.write_bytes(path.read_bytes()[:1000])
    elif kind == "not a state dict":
        path = tmp_path / "w.pth"
        torch.save([1, 2, 3], path)
    else:  # a whole pickled model: weights_only refuses it, so it is never unpickled
        path = tmp_path / "w.pth"
        torch.save(_reference("test_resnet", 1), path)
    return path


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("empty", "is empty"),
        ("truncated", "is truncated or corrupt"),
        ("not a state dict", "holds a list, not a state dict"),
        ("pickled model", "holds pickled Python objects"),
    ],
)
def test_a_damaged_weights_file_is_a_checkpoint_error_naming_the_param(tmp_path, kind, expected):
    path = _damaged(tmp_path, kind)
    with pytest.raises(
        CheckpointError, match=rf"^model\.encoders\.image\.params\.weights_file: .*{expected}"
    ):
        TimmEncoder(GRAY, model_name="test_resnet", weights_file=str(path))


def test_a_folder_given_as_weights_file_is_named_a_folder(tmp_path):
    (tmp_path / "w.safetensors").mkdir()
    with pytest.raises(SpecError, match=r"weights_file: weights file .* is a folder, not a file"):
        TimmEncoder(GRAY, model_name="test_resnet", weights_file=str(tmp_path / "w.safetensors"))


def test_unknown_model_name_lists_close_matches():
    with pytest.raises(SpecError) as info:
        TimmEncoder(GRAY, model_name="resnet10tt")
    msg = str(info.value)
    assert msg.startswith("model.encoders.image.params.model_name: timm has no model named")
    assert "resnet10t" in msg


def test_explicit_img_size_on_a_size_agnostic_model_is_an_error():
    with pytest.raises(SpecError, match=r"params\.img_size"):
        TimmEncoder(GRAY, model_name="test_resnet", img_size=32)


def test_freeze_locks_tower_but_projection_trains():
    enc = TimmEncoder(GRAY, model_name="test_resnet", freeze=True, proj_dim=4)
    enc.train()
    assert not enc.model.training and enc.proj.training
    assert all(not p.requires_grad for p in enc.model.parameters())
    before = {k: v.clone() for k, v in enc.model.state_dict().items()}
    enc(torch.randn(3, 1, 32, 32)).sum().backward()
    assert enc.proj.weight.grad is not None
    for key, value in enc.model.state_dict().items():  # BN running stats untouched
        torch.testing.assert_close(value, before[key], msg=key)


def test_grad_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = TimmEncoder(RGB, model_name="test_vit")
    ckpt = TimmEncoder(RGB, model_name="test_vit", grad_checkpointing=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 32)
    for enc in (plain, ckpt):
        enc.train()
        enc(x).square().sum().backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), ckpt.named_parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, msg=name, rtol=1e-4, atol=1e-5)


def test_preprocess_gives_the_modality_shape_normalised():
    from PIL import Image

    enc = TimmEncoder(GRAY, model_name="test_resnet")
    transform = enc.preprocess()
    out = transform(Image.new("RGB", (50, 40), color=(255, 255, 255)))
    assert out.shape == (1, 32, 32)
    mean, std = transform.config["mean"][0], transform.config["std"][0]
    torch.testing.assert_close(out, torch.full_like(out, (1.0 - mean) / std))


def _trainable(enc) -> set[str]:
    return {n for n, p in enc.model.named_parameters() if p.requires_grad}


def test_unlocked_groups_lock_all_but_the_last_layer_groups():
    from timm.models import group_parameters

    enc = TimmEncoder(RGB, model_name="test_vit", freeze=True, unlocked_groups=2, proj_dim=6)
    groups = group_parameters(enc.model, enc.model.group_matcher())
    last = max(groups)
    assert _trainable(enc) == set(groups[last]) | set(groups[last - 1])
    assert {"cls_token", "pos_embed", "blocks.0.attn.qkv.weight"}.isdisjoint(_trainable(enc))
    enc.train()
    assert enc.model.training  # a partly locked tower trains (dropout, norms) as usual
    enc(torch.randn(2, 3, 32, 32)).sum().backward()
    for name, p in enc.model.named_parameters():
        assert (p.grad is not None) == (name in _trainable(enc)), name
    assert enc.proj.weight.grad is not None


def test_unlocked_groups_with_grad_checkpointing_reach_the_unlocked_blocks():
    torch.manual_seed(0)
    plain = TimmEncoder(RGB, model_name="test_vit", freeze=True, unlocked_groups=1)
    ckpt = TimmEncoder(
        RGB, model_name="test_vit", freeze=True, unlocked_groups=1, grad_checkpointing=True
    )
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 32)
    for enc in (plain, ckpt):
        enc.train()
        enc(x).square().sum().backward()
    grads = {n: p.grad for n, p in ckpt.model.named_parameters() if p.grad is not None}
    assert grads and set(grads) == _trainable(ckpt)
    for name, p in plain.model.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(grads[name], p.grad, msg=name, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("freeze_bn_stats", [True, False])
def test_freeze_bn_stats_keeps_locked_batch_norm_statistics(freeze_bn_stats):
    enc = TimmEncoder(
        GRAY,
        model_name="test_resnet",
        freeze=True,
        unlocked_groups=1,
        freeze_bn_stats=freeze_bn_stats,
    )
    enc.train()
    stem_bn, last_bn = enc.model.bn1, enc.model.layer4[0].bn1
    assert stem_bn.training is not freeze_bn_stats and last_bn.training
    stem_before = stem_bn.running_mean.clone()
    last_before = last_bn.running_mean.clone()
    enc(torch.randn(4, 1, 32, 32) * 3 + 1)
    assert torch.equal(stem_bn.running_mean, stem_before) is freeze_bn_stats
    assert not torch.equal(last_bn.running_mean, last_before)  # unlocked group keeps learning
    assert not stem_bn.weight.requires_grad and last_bn.weight.requires_grad


def test_too_many_unlocked_groups_is_a_spec_error_naming_the_count():
    with pytest.raises(SpecError, match=r"params\.unlocked_groups: .* has 5 layer groups"):
        TimmEncoder(GRAY, model_name="test_resnet", freeze=True, unlocked_groups=5)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [({"unlocked_groups": 1}, "unlocked_groups"), ({"freeze_bn_stats": True}, "freeze_bn_stats")],
)
def test_lock_options_without_freeze_are_spec_errors(kwargs, param):
    with pytest.raises(SpecError, match=rf"params\.{param}: .*freeze is false"):
        TimmEncoder(GRAY, model_name="test_resnet", **kwargs)


def test_proj_dim_projects_pooled_features_and_tokens():
    enc = TimmEncoder(GRAY, model_name="test_resnet", proj_dim=5).eval()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        pooled = enc.model(x)
        torch.testing.assert_close(enc(x), enc.proj(pooled))
    assert enc.output.dim == 5 and enc.forward_tokens(x).shape[-1] == 5
    with pytest.raises(SpecError, match=r"params\.proj_dim"):
        TimmEncoder(GRAY, model_name="test_resnet", proj_dim=0)

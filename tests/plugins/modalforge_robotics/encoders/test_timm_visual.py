"""``timm_visual``: timm's own feature maps, FiLM after each stage (identity at init, then the
closed form), local weights with the first convolution adapted to depth, freezing, bad input."""

from __future__ import annotations

import pytest
import timm
import torch
from safetensors.torch import save_file

from modalforge.errors import SpecError
from modalforge.modality import Modality
from modalforge_robotics.encoders import SpatialSoftmax, TimmVisualEncoder

RGB = Modality("image_front", "image2d", (3, 64, 64))
TINY = "resnet10t"  # a small timm ResNet: 5 feature stages


def _plain(**kwargs) -> TimmVisualEncoder:
    torch.manual_seed(0)
    return TimmVisualEncoder(RGB, model_name=TINY, **kwargs)


def test_maps_are_timms_feature_maps_and_pool_to_keypoints():
    enc = _plain(num_keypoints=6, out_index=2)
    ref = timm.create_model(TINY, features_only=True, out_indices=(0, 1, 2))
    ref.load_state_dict(enc.trunk.state_dict())
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(enc.feature_map(x), ref(x)[2])
    assert enc.output.dim == 12 and enc(x).shape == (2, 12)
    pooled = SpatialSoftmax(ref.feature_info.channels()[2], 6)
    pooled.load_state_dict(enc.pool.state_dict())
    torch.testing.assert_close(enc(x), pooled(ref(x)[2]))
    # only the stages that run are built: layer3 / layer4 are not
    assert not any(n.startswith(("layer3", "layer4")) for n, _ in enc.trunk.named_parameters())
    avg = _plain(pool="avg", out_dim=5)
    assert avg(x).shape == (2, 5)


def test_film_after_each_stage_starts_as_the_identity_then_modulates():
    plain = _plain(num_keypoints=4)
    film = _plain(num_keypoints=4, condition_on=["instruction"], condition_dim=7)
    film.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(film.films) == ["0", "1", "2", "3", "4"]
    x, c = torch.rand(2, 3, 64, 64), torch.randn(2, 7)  # the last stage's maps are 2 × 2
    torch.testing.assert_close(film(x, c), plain(x))  # zero-initialised γ, β
    # modulating only the last stage: (1 + γ) · maps + β of the unconditioned maps
    last = _plain(num_keypoints=4, condition_on=["instruction"], condition_dim=7, film_stages=[4])
    last.load_state_dict(plain.state_dict(), strict=False)
    with torch.no_grad():
        last.films["4"].proj.weight.normal_()
    gamma, beta = last.films["4"].proj(c).chunk(2, dim=-1)
    expected = (1 + gamma)[:, :, None, None] * plain.feature_map(x) + beta[:, :, None, None]
    torch.testing.assert_close(last.feature_map(x, c), expected)
    (film(x, c) ** 2).sum().backward()
    assert all(f.proj.weight.grad.abs().sum() > 0 for f in film.films.values())
    with pytest.raises(ValueError, match="conditioned on"):
        film(x)


def test_local_weights_load_with_depth_channels_and_freeze_keeps_them(tmp_path):
    source = timm.create_model(TINY, num_classes=0)
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, path)
    depth = Modality("depth_front", "depth", (1, 32, 32))
    enc = TimmVisualEncoder(depth, model_name=TINY, weights_file=str(path), freeze=True)
    conv = enc.trunk.state_dict()["conv1.0.weight"]
    # timm adapts a 3-channel first convolution to 1 channel by summing over its input channels
    torch.testing.assert_close(conv, source.state_dict()["conv1.0.weight"].sum(1, keepdim=True))
    assert not any(p.requires_grad for p in enc.trunk.parameters())
    enc.train()
    assert not enc.trunk.training and enc.pool.training
    before = {k: v.clone() for k, v in enc.trunk.state_dict().items()}
    enc(torch.rand(4, 1, 32, 32))
    assert all(torch.equal(before[k], v) for k, v in enc.trunk.state_dict().items())


def test_bad_input_names_the_field(tmp_path):
    with pytest.raises(SpecError, match="model_name.*close matches"):
        TimmVisualEncoder(RGB, model_name="resnet10tt")
    with pytest.raises(SpecError, match="out_index"):
        TimmVisualEncoder(RGB, model_name=TINY, out_index=7)
    with pytest.raises(SpecError, match="film_stages"):
        TimmVisualEncoder(
            RGB,
            model_name=TINY,
            out_index=1,
            condition_on=["instruction"],
            condition_dim=4,
            film_stages=[3],
        )
    with pytest.raises(SpecError, match="weights_file"):
        TimmVisualEncoder(RGB, model_name=TINY, weights_file=str(tmp_path / "missing.pth"))

"""FiLM, spatial-softmax keypoints and the ``visual`` encoder against closed forms."""

from __future__ import annotations

import pytest
import torch

from modalforge.modality import Modality
from modalforge.pipeline import build_pipeline
from modalforge.registry import Registrar
from modalforge.spec import parse_spec
from modalforge_robotics.encoders import FiLM, SpatialSoftmax, VisualEncoder
from tests.core.toy import toy_registry, toy_spec


def test_film_is_the_identity_at_init_then_one_plus_gamma_x_plus_beta():
    film = FiLM(condition_dim=3, channels=2)
    x, c = torch.randn(4, 2, 5, 5), torch.randn(4, 3)
    torch.testing.assert_close(film(x, c), x)
    with torch.no_grad():
        film.proj.weight.normal_()
        film.proj.bias.normal_()
    gamma_beta = c @ film.proj.weight.T + film.proj.bias
    gamma, beta = gamma_beta[:, :2], gamma_beta[:, 2:]
    expected = (1 + gamma)[:, :, None, None] * x + beta[:, :, None, None]
    torch.testing.assert_close(film(x, c), expected)


def test_spatial_softmax_finds_a_peak_at_its_normalised_position():
    pool = SpatialSoftmax(channels=2, temperature=0.01, learn_temperature=False)
    maps = torch.zeros(1, 2, 5, 9)
    maps[0, 0, 1, 6] = 10.0  # row 1 of 5 → y = -0.5; column 6 of 9 → x = 0.5
    maps[0, 1, 4, 0] = 10.0  # bottom-left → (x, y) = (-1, 1)
    out = pool(maps)
    assert out.shape == (1, 4)
    torch.testing.assert_close(out, torch.tensor([[0.5, -0.5, -1.0, 1.0]]), atol=1e-4, rtol=0)
    # uniform maps → the centre
    torch.testing.assert_close(pool(torch.zeros(3, 2, 4, 4)), torch.zeros(3, 4))
    learnt = SpatialSoftmax(channels=6, num_keypoints=3)
    assert learnt(torch.randn(2, 6, 4, 4)).shape == (2, 6)
    assert learnt.log_temperature.requires_grad


def test_visual_encoder_sizes_and_conditioned_trunk_starts_unconditioned():
    rgb = Modality("image_front", "image2d", (6, 24, 24))  # two stacked RGB frames
    plain = VisualEncoder(rgb, widths=[8, 16], num_keypoints=5)
    assert plain.output.dim == 10
    assert plain(torch.rand(3, 6, 24, 24)).shape == (3, 10)
    film = VisualEncoder(
        rgb, widths=[8, 16], num_keypoints=5, condition_on=["instruction"], condition_dim=7
    )
    film.load_state_dict(plain.state_dict(), strict=False)  # same trunk, FiLM layers at zero
    x, c = torch.rand(3, 6, 24, 24), torch.randn(3, 7)
    torch.testing.assert_close(film(x, c), plain(x))
    film(x, c).sum().backward()
    assert all(f.proj.weight.grad.abs().sum() > 0 for f in film.films)
    with pytest.raises(ValueError, match="conditioned on \\['instruction'\\]"):
        film(x)
    depth = VisualEncoder(Modality("depth_front", "depth", (1, 24, 24)), pool="avg", widths=[4])
    assert depth(torch.rand(2, 1, 24, 24)).shape == (2, 4)


def test_visual_encoder_conditioned_through_a_spec():
    registry = toy_registry()
    Registrar(registry, "robotics").encoder("visual", VisualEncoder)
    spec = toy_spec()
    spec["model"]["encoders"] = {
        "image": {"name": "visual", "params": {"widths": [4], "condition_on": ["state"]}},
        "state": {"name": "flatten", "params": {"dim": 3}},
    }
    model = build_pipeline(parse_spec(spec), registry).model
    assert model.encoders["image"].films[0].proj.in_features == 3
    batch = {"image": torch.rand(2, 1, 6, 6), "state": torch.randn(2, 5)}
    assert model(batch)["logits"].shape == (2, 3)


def test_visual_strides_set_the_last_maps_resolution():
    rgb = Modality("image_front", "image2d", (3, 32, 32))
    fine = VisualEncoder(rgb, widths=[8, 8], strides=[2, 1], num_keypoints=4)
    assert fine.feature_map(torch.rand(2, 3, 32, 32)).shape == (2, 8, 16, 16)
    assert VisualEncoder(rgb, widths=[8, 8]).feature_map(torch.rand(1, 3, 32, 32)).shape[-1] == 8
    with pytest.raises(ValueError, match="strides"):
        VisualEncoder(rgb, widths=[8, 8], strides=[2])

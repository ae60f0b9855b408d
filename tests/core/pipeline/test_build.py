import pytest
import torch

from modalforge.errors import DataError, SpecError
from modalforge.pipeline import MultimodalModel, build_pipeline
from modalforge.spec import parse_spec
from tests.core.toy import toy_registry, toy_spec


def _build(data: dict):  # noqa: ANN202
    return build_pipeline(parse_spec(data), toy_registry())


def test_sizes_flow_from_data_to_head():
    p = _build(toy_spec())
    model = p.model
    assert isinstance(model, MultimodalModel)
    assert model.encoders["image"].proj.in_features == 36  # 1x6x6 image
    assert model.encoders["ct"].proj.in_features == 64  # 1x4x4x4 volume
    assert model.encoders["state"].proj.in_features == 5  # low-dim vector
    assert model.fusion.output.dim == 4 + 6 + 8
    assert model.head.fc.in_features == 18 and model.head.fc.out_features == 3


def test_volume_vector_and_image_through_one_model():
    p = _build(toy_spec())
    batch = next(iter(torch.utils.data.DataLoader(p.dataset.load("train"), batch_size=5)))
    out = p.model(batch)
    assert out["logits"].shape == (5, 3) and out["features"].shape == (5, 18)
    loss = p.loss(out, batch)
    loss.total.backward()
    for name, param in p.model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    # features equal the concatenation of each encoder applied alone
    expected = torch.cat([p.model.encoders[m](batch[m]) for m in ("image", "ct", "state")], -1)
    torch.testing.assert_close(out["features"], expected)


def test_single_encoder_needs_no_fusion():
    data = toy_spec()
    data["model"] = {"encoders": {"image": "flatten"}, "head": "linear"}
    p = _build(data)
    assert p.model.fusion is None and p.model.head.fc.in_features == 8


def test_two_encoders_without_fusion():
    data = toy_spec()
    data["model"] = {"encoders": {"image": "flatten", "state": "flatten"}, "head": "linear"}
    with pytest.raises(SpecError, match="model.fusion: 2 encoders need a fusion"):
        _build(data)


def test_missing_modality_in_data():
    data = toy_spec()
    data["model"]["encoders"]["clinical"] = "flatten"
    with pytest.raises(DataError) as exc:
        _build(data)
    msg = str(exc.value)
    assert "does not provide modality 'clinical'" in msg
    assert "image (image2d, 1×6×6)" in msg and "ct (volume3d, 1×4×4×4)" in msg


def test_encoder_of_wrong_kind():
    data = toy_spec()
    data["model"]["encoders"]["ct"] = "image_only"
    with pytest.raises(SpecError, match=r"model.encoders.ct: ImageOnlyEncoder reads image2d, but "):
        _build(data)


def test_incompatible_fusion_sizes_are_explained():
    data = toy_spec()
    data["model"]["fusion"] = "sum"  # encoders give 4, 6, 8
    with pytest.raises(SpecError) as exc:
        _build(data)
    assert str(exc.value).startswith(
        "model.fusion: fusion 'sum' rejected its configuration: sum needs equal input dims"
    )


def test_unknown_split():
    data = toy_spec()
    data["data"]["eval_split"] = "validation"
    with pytest.raises(
        SpecError, match="data.eval_split: data set 'toy' has no split 'validation'"
    ):
        _build(data)

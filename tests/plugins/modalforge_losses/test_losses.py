"""Losses equal torch.nn.functional references and report named parts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from modalforge.contracts import Target
from modalforge.errors import SpecError
from modalforge_losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss


def test_cross_entropy_matches_functional_with_smoothing_and_weights():
    torch.manual_seed(0)
    logits, y = torch.randn(6, 4, requires_grad=True), torch.randint(0, 4, (6,))
    weights = [1.0, 2.0, 0.5, 1.5]
    loss = CrossEntropyLoss(Target("multiclass", 4), label_smoothing=0.1, class_weights=weights)
    out = loss({"logits": logits}, {"target": y})
    expected = F.cross_entropy(logits, y, weight=torch.tensor(weights), label_smoothing=0.1)
    torch.testing.assert_close(out.total, expected)
    assert set(out.parts) == {"cross_entropy"}
    out.total.backward()
    assert logits.grad is not None


def test_bce_matches_functional():
    torch.manual_seed(1)
    logits, y = torch.randn(5, 3), torch.randint(0, 2, (5, 3)).float()
    loss = BCEWithLogitsLoss(Target("multilabel", 3), pos_weight=[1.0, 3.0, 0.5])
    out = loss({"logits": logits}, {"target": y})
    expected = F.binary_cross_entropy_with_logits(
        logits, y, pos_weight=torch.tensor([1.0, 3.0, 0.5])
    )
    torch.testing.assert_close(out.total, expected)
    assert set(out.parts) == {"bce_with_logits"}


def test_mse_matches_functional_and_reshapes_a_flat_target():
    pred, y = torch.randn(7, 1), torch.randn(7)
    out = MSELoss(Target("regression", 1))({"prediction": pred}, {"target": y})
    torch.testing.assert_close(out.total, F.mse_loss(pred[:, 0], y))


def test_class_weights_length_must_match_classes():
    with pytest.raises(SpecError, match=r"loss\.params\.class_weights"):
        CrossEntropyLoss(Target("multiclass", 3), class_weights=[1.0, 2.0])


def test_loss_for_the_wrong_target_kind_suggests_the_right_one():
    with pytest.raises(SpecError, match="bce_with_logits"):
        CrossEntropyLoss(Target("multilabel", 3))
    with pytest.raises(SpecError, match="cross_entropy"):
        BCEWithLogitsLoss(Target("multiclass", 3))


def test_missing_output_names_the_param():
    with pytest.raises(SpecError, match=r"loss\.params\.output_key.*'prediction'"):
        CrossEntropyLoss()({"prediction": torch.randn(2, 1)}, {"target": torch.zeros(2)})


def test_class_weights_follow_the_module_to_its_device_and_dtype():
    loss = CrossEntropyLoss(class_weights=[1.0, 2.0]).double()
    assert loss.class_weights.dtype == torch.float64
    assert "class_weights" in dict(loss.named_buffers())

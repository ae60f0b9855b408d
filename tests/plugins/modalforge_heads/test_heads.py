"""Heads: sized from in_dim and the target, gradients reach every parameter."""

from __future__ import annotations

import pytest
import torch

from modalforge.contracts import Target
from modalforge.errors import SpecError
from modalforge_heads import ClassificationHead, ProjectionHead, RegressionHead

MULTICLASS = Target("multiclass", 4)
MULTILABEL = Target("multilabel", 3)
REGRESSION = Target("regression", 2)


@pytest.mark.parametrize("target", [MULTICLASS, MULTILABEL])
@pytest.mark.parametrize("hidden", [[], [8, 6]])
def test_classification_outputs_one_logit_per_class(target, hidden):
    head = ClassificationHead(10, target, hidden_dims=hidden, dropout=0.1)
    assert head.output_key == "logits"
    assert head(torch.randn(5, 10)).shape == (5, target.num_outputs)


def test_classification_without_hidden_is_linear():
    head = ClassificationHead(3, MULTICLASS)
    x = torch.randn(2, 3)
    lin = head.net[-1]
    torch.testing.assert_close(head(x), x @ lin.weight.T + lin.bias)


def test_regression_head():
    head = RegressionHead(7, REGRESSION, hidden_dims=[5])
    assert head.output_key == "prediction"
    assert head(torch.randn(4, 7)).shape == (4, 2)


def test_projection_head_normalises_when_asked():
    head = ProjectionHead(6, out_dim=4, hidden_dims=[8], normalize=True)
    out = head(torch.randn(3, 6))
    assert head.output_key == "embedding" and out.shape == (3, 4)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(3))


def test_wrong_target_kind_names_the_field_and_fix():
    with pytest.raises(SpecError, match=r"model\.head.*regression") as info:
        ClassificationHead(4, REGRESSION)
    assert "head: regression" in str(info.value)
    with pytest.raises(SpecError, match=r"model\.head"):
        RegressionHead(4, MULTICLASS)


@pytest.mark.parametrize(
    "head",
    [
        lambda: ClassificationHead(6, MULTICLASS, hidden_dims=[5, 4]),
        lambda: RegressionHead(6, REGRESSION, hidden_dims=[3]),
        lambda: ProjectionHead(6, out_dim=3, hidden_dims=[4]),
    ],
)
def test_gradients_reach_every_head_parameter(head):
    h = head()
    h(torch.randn(8, 6)).square().sum().backward()
    for name, p in h.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name

import pytest
import torch

from modalforge.contracts import FeatureSpec, Fusion


class _Sum(Fusion):
    def __init__(self, in_features, declare: bool) -> None:  # noqa: ANN001
        super().__init__(in_features)
        if declare:
            self._output = FeatureSpec(4)

    def forward(self, features, masks=None) -> torch.Tensor:  # noqa: ANN001
        return sum(features.values())


def test_fusion_output_comes_from_init():
    specs = {"a": FeatureSpec(4), "b": FeatureSpec(4)}
    assert _Sum(specs, declare=True).output == FeatureSpec(4)
    with pytest.raises(NotImplementedError, match="_Sum declares no output"):
        _ = _Sum(specs, declare=False).output

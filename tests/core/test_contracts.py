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


def test_reranker_keeps_best_first_with_stable_ties():
    from modalforge.contracts import Reranker

    class Fixed(Reranker):
        def score(self, samples, prompts):  # noqa: ANN001, ANN202
            return torch.tensor([[0.1, 0.9, 0.5, 0.9], [0.3, 0.2, 0.1, 0.0]])

    samples = torch.arange(8.0).view(2, 4, 1)
    ranked = Fixed().rerank(samples, ["a", "b"], keep=3)
    assert ranked.indices.tolist() == [[1, 3, 2], [0, 1, 2]]  # equal scores keep their order
    assert ranked.samples.squeeze(-1).tolist() == [[1.0, 3.0, 2.0], [4.0, 5.0, 6.0]]
    torch.testing.assert_close(ranked.scores, torch.tensor([[0.9, 0.9, 0.5], [0.3, 0.2, 0.1]]))
    assert ranked.all_scores.shape == (2, 4)
    with pytest.raises(ValueError, match="keep must be between 1 and the 4"):
        Fixed().rerank(samples, ["a", "b"], keep=5)
    with pytest.raises(ValueError, match="2 candidate sets for 1 prompts"):
        Fixed().rerank(samples, ["a"], keep=1)


def test_target_shape_holds_its_outputs():
    from modalforge.contracts import Target

    chunk = Target("regression", 12, shape=[4, 3])
    assert chunk.shape == (4, 3) and chunk.num_outputs == 12
    assert Target("regression", 3).shape == ()
    with pytest.raises(ValueError, match=r"\(4, 2\) does not hold 12"):
        Target("regression", 12, shape=(4, 2))

"""Robustness evaluation: corruption semantics, clean/missing references, AUC, determinism."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from modalforge.errors import DataError
from modalforge.evaluation import corrupt_batch, evaluate_robustness, normalized_auc
from tests.core.pipeline.test_dropout import _model

LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _loader(n_batches: int = 3, size: int = 16) -> list[dict[str, Tensor]]:
    g = torch.Generator().manual_seed(2)
    return [
        {
            **{m: torch.randn(size, 3, generator=g) for m in ("a", "b", "c")},
            "target": torch.randint(0, 2, (size,), generator=g),
        }
        for _ in range(n_batches)
    ]


def _accuracy(preds: Tensor, targets: Tensor) -> float:
    return (preds.argmax(-1) == targets).float().mean().item()


def test_corrupt_noise_scales_with_the_batch_std():
    x = 3.0 * torch.randn(200, 50, generator=torch.Generator().manual_seed(0))
    batch = {"x": x, "target": torch.zeros(200)}
    out = corrupt_batch(batch, "x", noise=0.5, generator=torch.Generator().manual_seed(1))
    assert batch["x"] is x and out["target"] is batch["target"]  # input untouched
    delta = out["x"] - x
    assert abs(delta.std().item() - 0.5 * x.std().item()) < 0.02 * 1.5
    assert abs(delta.mean().item()) < 0.05
    assert corrupt_batch(batch, "x", noise=0.0)["x"] is x


def test_corrupt_constant_tensor_uses_unit_scale_and_is_seeded():
    batch = {"x": torch.full((400, 25), 7.0)}
    g = torch.Generator().manual_seed(3)
    out = corrupt_batch(batch, "x", noise=0.2, generator=g)
    assert abs((out["x"] - 7.0).std().item() - 0.2) < 0.01
    again = corrupt_batch(batch, "x", noise=0.2, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(out["x"], again["x"])


def test_corrupt_missing_zeroes_and_masks():
    ids = torch.randint(1, 9, (4, 5))
    x_mask = torch.tensor([1, 0, 1, 1]).bool()
    batch = {"tokens": ids, "x": torch.ones(4, 2), "masks": {"x": x_mask}}
    out = corrupt_batch(batch, "tokens", missing=True)
    assert (out["tokens"] == 0).all() and out["tokens"].dtype == ids.dtype
    assert out["masks"]["tokens"].tolist() == [False] * 4
    assert out["masks"]["x"] is batch["masks"]["x"]
    assert "tokens" not in batch["masks"] and (batch["tokens"] == ids).all()


def test_corrupt_rejects_bad_requests():
    batch = {"tokens": torch.arange(6).reshape(2, 3), "x": torch.zeros(2, 3)}
    with pytest.raises(DataError, match="'tokens' holds torch.int64 values; noise applies"):
        corrupt_batch(batch, "tokens", noise=0.1)
    with pytest.raises(ValueError, match="not both"):
        corrupt_batch(batch, "x", noise=0.1, missing=True)
    with pytest.raises(ValueError, match=">= 0"):
        corrupt_batch(batch, "x", noise=-1.0)
    with pytest.raises(KeyError, match="no modality 'y'"):
        corrupt_batch(batch, "y", missing=True)


def test_normalized_auc_closed_form():
    assert normalized_auc([0, 0.5, 1], [1, 0.5, 0]) == pytest.approx(0.5)
    # uneven, unsorted levels: (0.25·(1+0.5)/2 + 0.75·(0.5+0.5)/2) / 1 = 0.5625
    assert normalized_auc([1, 0, 0.25], [0.5, 1, 0.5]) == pytest.approx(0.5625)
    # normalised by the level range, so a constant curve gives the constant
    assert normalized_auc([0.2, 0.6], [0.8, 0.8]) == pytest.approx(0.8)
    assert normalized_auc([0.3], [0.7]) == 0.7
    with pytest.raises(ValueError, match="distinct"):
        normalized_auc([0, 0], [1, 1])


def test_noise_zero_is_clean_and_missing_matches_the_masked_model():
    model = _model(None)
    loader = _loader()
    res = evaluate_robustness(model, loader, _accuracy, ["a", "b"], device="cpu", seed=0)
    assert set(res) == {"clean", "noise", "missing", "auc"}
    assert list(res["noise"]["a"]) == list(LEVELS)
    with torch.no_grad():
        logits = torch.cat([model(b)["logits"] for b in loader])
        targets = torch.cat([b["target"] for b in loader])
        assert res["clean"] == _accuracy(logits, targets)
        assert res["noise"]["a"][0.0] == res["clean"] == res["noise"]["b"][0.0]
        for m in ("a", "b"):
            masked = [
                {**b, m: torch.zeros_like(b[m]), "masks": {m: torch.zeros(16, dtype=torch.bool)}}
                for b in loader
            ]
            logits = torch.cat([model(b)["logits"] for b in masked])
            assert res["missing"][m] == _accuracy(logits, targets)
    for m in ("a", "b"):
        curve = res["noise"][m]
        assert res["auc"][m] == pytest.approx(normalized_auc(LEVELS, [curve[v] for v in LEVELS]))


class _Echo(nn.Module):
    """Predicts its input: the absolute error to the clean input is exactly linear in noise."""

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"pred": batch["x"]}


def test_metric_linear_in_noise_gives_half_the_end_value():
    g = torch.Generator().manual_seed(5)
    loader = []
    for _ in range(2):
        x = torch.randn(8, 4, generator=g)
        loader.append({"x": x, "target": x.clone()})

    def mae(pred: Tensor, target: Tensor) -> float:
        return (pred - target).abs().mean().item()

    res = evaluate_robustness(_Echo(), loader, mae, ["x"], output_key="pred", seed=4)
    curve = res["noise"]["x"]
    end = curve[1.0]
    assert end > 0 and curve[0.0] == 0.0
    for level in LEVELS:  # the same draws at each level: error = level × end
        assert curve[level] == pytest.approx(level * end, rel=1e-5)
    assert res["auc"]["x"] == pytest.approx(end / 2, rel=1e-5)
    assert res["missing"]["x"] == pytest.approx(torch.cat([b["x"] for b in loader]).abs().mean())


def test_deterministic_given_seed_and_restores_mode():
    model = _model(None).train()
    loader = _loader()
    levels = (0.0, 1.0, 3.0)
    first = evaluate_robustness(model, loader, _accuracy, ["a"], noise_levels=levels, seed=1)
    assert model.training
    second = evaluate_robustness(model, loader, _accuracy, ["a"], noise_levels=levels, seed=1)
    assert first == second

    def mse(pred: Tensor, target: Tensor) -> float:
        return pred.square().mean().item()

    a = evaluate_robustness(model, loader, mse, ["a"], noise_levels=levels, seed=1)
    b = evaluate_robustness(model, loader, mse, ["a"], noise_levels=levels, seed=2)
    assert a["noise"]["a"][0.0] == b["noise"]["a"][0.0]
    assert a["noise"]["a"][3.0] != b["noise"]["a"][3.0]

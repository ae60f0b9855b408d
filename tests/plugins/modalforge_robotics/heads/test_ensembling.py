"""ACT temporal ensembling against a hand computation and its limits (m large, k = 1)."""

from __future__ import annotations

import math

import pytest
import torch

from modalforge_robotics.heads import TemporalEnsembler


def _chunk(t: int, k: int = 3, a: int = 1) -> torch.Tensor:
    """The chunk predicted at step t: its prediction for step t + j is 10 * t + j (distinct)."""
    return (10.0 * t + torch.arange(k, dtype=torch.float32)).reshape(k, 1).expand(k, a).clone()


def test_matches_a_hand_computation():
    m = 0.5
    ens = TemporalEnsembler(m)
    # step 0: only chunk 0's prediction 0
    assert ens.update(_chunk(0)).tolist() == [0.0]
    # step 1: predictions for step 1: chunk 0 (oldest, i=0) → 1, chunk 1 (i=1) → 10
    w = [1.0, math.exp(-m)]
    want = (w[0] * 1 + w[1] * 10) / sum(w)
    assert ens.update(_chunk(1)).item() == pytest.approx(want)
    # step 2: chunk 0 → 2, chunk 1 → 11, chunk 2 → 20, weights exp(0), exp(-m), exp(-2m)
    w = [1.0, math.exp(-m), math.exp(-2 * m)]
    want = (w[0] * 2 + w[1] * 11 + w[2] * 20) / sum(w)
    assert ens.update(_chunk(2)).item() == pytest.approx(want)
    # step 3: chunk 0 has run out (k = 3); chunk 1 → 12 is now the oldest
    want = (w[0] * 12 + w[1] * 21 + w[2] * 30) / sum(w)
    assert ens.update(_chunk(3)).item() == pytest.approx(want)


def test_large_m_executes_the_oldest_prediction_and_zero_m_averages():
    ens = TemporalEnsembler(1e4)
    got = [ens.update(_chunk(t)).item() for t in range(5)]
    assert got == [0.0, 1.0, 2.0, 12.0, 22.0]  # open-loop within the oldest valid chunk
    ens = TemporalEnsembler(0.0)
    got = [ens.update(_chunk(t)).item() for t in range(4)]
    assert got == pytest.approx([0.0, 5.5, 11.0, 21.0])


def test_k1_is_the_identity_and_reset_forgets():
    ens = TemporalEnsembler(0.01)
    for _ in range(3):
        chunk = torch.randn(2, 1, 4)
        assert torch.equal(ens.update(chunk), chunk[:, 0])
    ens = TemporalEnsembler(0.0)
    ens.update(_chunk(0))
    ens.reset()
    assert ens.update(_chunk(5)).item() == 50.0


def test_batched_environments_and_per_env_reset():
    m = 0.3
    batched, singles = TemporalEnsembler(m), [TemporalEnsembler(m) for _ in range(3)]
    g = torch.Generator().manual_seed(0)
    for t in range(6):
        chunks = torch.randn(3, 4, 2, generator=g)
        if t == 3:  # environment 1 starts a new episode
            batched.reset(torch.tensor([False, True, False]))
            singles[1].reset()
        got = batched.update(chunks)
        want = torch.stack([s.update(c) for s, c in zip(singles, chunks, strict=True)])
        torch.testing.assert_close(got, want)


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="non-negative"):
        TemporalEnsembler(-1.0)
    ens = TemporalEnsembler()
    ens.update(torch.zeros(2, 3, 1))
    with pytest.raises(ValueError, match="call reset"):
        ens.update(torch.zeros(4, 3, 1))
    with pytest.raises(ValueError, match="2 environments"):
        ens.reset(torch.tensor([True]))
    with pytest.raises(ValueError, match=r"\(B, k, A\)"):
        ens.update(torch.zeros(3))

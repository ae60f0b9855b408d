"""Temperature, top-k and nucleus filtering against hand-computed results; seeded draws."""

import math

import pytest
import torch

from modalforge_generators.sampling import SamplingError, filter_logits, sample_tokens

INF = float("-inf")
# probabilities 0.5, 0.3, 0.15, 0.05 (logits are their logs)
PROBS = torch.tensor([0.5, 0.3, 0.15, 0.05])
LOGITS = PROBS.log()


def test_temperature_divides_the_logits():
    logits = torch.tensor([[1.0, -2.0, 0.5]])
    torch.testing.assert_close(filter_logits(logits, temperature=0.5), logits / 0.5)
    torch.testing.assert_close(filter_logits(logits), logits)


def test_top_k_keeps_the_k_largest():
    logits = torch.tensor([[0.1, 2.0, -1.0, 1.5, 0.3], [5.0, 4.0, 3.0, 2.0, 1.0]])
    got = filter_logits(logits, top_k=2)
    want = torch.tensor([[INF, 2.0, INF, 1.5, INF], [5.0, 4.0, INF, INF, INF]])
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(filter_logits(logits, top_k=0), logits)  # 0: off
    torch.testing.assert_close(filter_logits(logits, top_k=9), logits)  # more than V: off


def test_top_k_keeps_ties_at_the_kth_value():
    got = filter_logits(torch.tensor([[1.0, 3.0, 1.0, 0.0]]), top_k=2)
    torch.testing.assert_close(got, torch.tensor([[1.0, 3.0, 1.0, INF]]))


@pytest.mark.parametrize(
    ("top_p", "kept"),
    [(0.4, 1), (0.7, 2), (0.9, 3), (0.99, 4), (1.0, 4)],
)
def test_top_p_keeps_the_smallest_nucleus(top_p, kept):
    # the mass strictly ahead of each token is 0, 0.5, 0.8, 0.95: removed once it reaches top_p
    got = filter_logits(LOGITS[None], top_p=top_p)[0]
    want = torch.where(torch.arange(4) < kept, LOGITS, torch.tensor(INF))
    torch.testing.assert_close(got, want)


def test_top_p_works_on_unsorted_rows():
    perm = torch.tensor([2, 0, 3, 1])
    got = filter_logits(LOGITS[perm][None], top_p=0.7)[0]
    want = torch.where(torch.isin(perm, torch.tensor([0, 1])), LOGITS[perm], torch.tensor(INF))
    torch.testing.assert_close(got, want)


def test_top_k_then_top_p_renormalised():
    # top-2 leaves 0.5/0.8 = 0.625 and 0.375: a nucleus of 0.6 keeps only the first
    got = filter_logits(LOGITS[None], top_k=2, top_p=0.6)[0]
    torch.testing.assert_close(got, torch.tensor([math.log(0.5), INF, INF, INF]))


def test_draws_follow_the_filtered_distribution():
    g = torch.Generator().manual_seed(0)
    n = 20000
    logits = LOGITS[None].expand(n, 4)
    draws = sample_tokens(logits, g, top_k=3)
    freq = torch.bincount(draws, minlength=4).float() / n
    want = torch.tensor([0.5, 0.3, 0.15, 0.0]) / 0.95
    torch.testing.assert_close(freq, want, atol=0.015, rtol=0)
    # temperature 0.5 squares the probabilities (then renormalises)
    draws = sample_tokens(logits, g, temperature=0.5)
    sq = PROBS**2 / (PROBS**2).sum()
    torch.testing.assert_close(
        torch.bincount(draws, minlength=4).float() / n, sq, atol=0.015, rtol=0
    )


def test_seeded_draws_repeat_and_top_k_1_is_greedy():
    logits = torch.randn(64, 10, generator=torch.Generator().manual_seed(1))
    a = sample_tokens(logits, torch.Generator().manual_seed(5))
    b = sample_tokens(logits, torch.Generator().manual_seed(5))
    c = sample_tokens(logits, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(sample_tokens(logits, top_k=1), logits.argmax(-1))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_k": -1}, "top_k"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
    ],
)
def test_bad_settings_are_clear_errors(kwargs, match):
    with pytest.raises(SamplingError, match=match):
        filter_logits(LOGITS[None], **kwargs)
    assert issubclass(SamplingError, ValueError)

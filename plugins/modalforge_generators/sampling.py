"""Next-token sampling for autoregressive generators: temperature, top-k and nucleus (top-p).

Filtering works on logits: removed tokens get ``-inf``, so a softmax gives them probability 0.
Drawing uses ``torch.multinomial`` with the caller's ``torch.Generator``, so a seeded generator
reproduces the same tokens.
"""

from __future__ import annotations

import torch
from torch import Tensor

from modalforge.errors import ModalforgeError


class SamplingError(ModalforgeError, ValueError):
    """A bad sampling request (prompts, number of samples, temperature, top-k/top-p)."""


def check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """A :class:`SamplingError` (a ``ValueError``) that names the bad setting."""
    if not temperature > 0:  # also rejects NaN
        raise SamplingError(
            f"temperature must be > 0, got {temperature}",
            hint="use e.g. 1.0; a small value such as 0.1 samples nearly greedily",
        )
    if top_k is not None and top_k < 0:
        raise SamplingError(
            f"top_k must be >= 0, got {top_k}", hint="0 or None switches top-k filtering off"
        )
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise SamplingError(
            f"top_p must be in (0, 1], got {top_p}", hint="1 or None switches nucleus sampling off"
        )


def filter_logits(
    logits: Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> Tensor:
    """``logits / temperature`` with every token outside the top-k and the nucleus set to -inf.

    - top-k keeps the tokens whose logit is at least the k-th largest (ties at the k-th value
      are all kept); ``None`` or 0 keeps all.
    - top-p keeps the smallest set of most probable tokens whose probabilities sum to at least
      ``top_p``: a token is removed when the tokens more probable than it already reach
      ``top_p``. The most probable token is always kept. ``None`` or 1 keeps all.

    Applied in that order (top-p on the top-k renormalised distribution), along the last axis.
    """
    check_sampling(temperature, top_k, top_p)
    out = logits.float() / temperature
    vocab = out.shape[-1]
    if top_k and top_k < vocab:
        kth = torch.topk(out, top_k, dim=-1).values[..., -1:]
        out = out.masked_fill(out < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(out, dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        before = probs.cumsum(-1) - probs  # probability mass strictly ahead of each token
        remove_sorted = before >= top_p
        remove_sorted[..., 0] = False
        remove = torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)
        out = out.masked_fill(remove, float("-inf"))
    return out


def sample_tokens(
    logits: Tensor,
    generator: torch.Generator | None = None,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> Tensor:
    """One token per row of ``logits (B, V)`` → ``LongTensor (B,)`` on the logits' device.

    Draws on the generator's device (a CPU generator with CUDA logits works), so the same seed
    gives the same tokens whatever the model's device.
    """
    probs = filter_logits(logits, temperature=temperature, top_k=top_k, top_p=top_p).softmax(-1)
    device = generator.device if generator is not None else probs.device
    drawn = torch.multinomial(probs.to(device), 1, generator=generator).squeeze(-1)
    return drawn.to(logits.device)

"""Modality dropout: randomly mark whole modalities absent per sample while training.

Training with missing modalities teaches a mask-respecting fusion to cope when a modality is
absent at test time. Dropping only touches ``batch["masks"]``; encoders still see the data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from modalforge.contracts import MASKS_KEY


def check_dropout(probs: Mapping[str, float], modalities: Sequence[str]) -> dict[str, float]:
    """Validated per-modality drop probabilities; raises ``ValueError`` naming the bad key."""
    out: dict[str, float] = {}
    for name, p in probs.items():
        if name not in modalities:
            raise ValueError(f"{name!r} is not an encoded modality (have: {', '.join(modalities)})")
        p = float(p)
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop probability of {name!r} must be in [0, 1), got {p}")
        out[name] = p
    return out


def dropout_masks(
    batch: Mapping[str, Tensor],
    modalities: Sequence[str],
    probs: Mapping[str, float],
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Presence masks for every modality after dropping modality ``m`` with probability ``p_m``.

    Each sample and modality is drawn independently and combined (AND) with the batch's own masks
    (absent stays absent). Rule against emptying a sample: if the draws would drop every modality
    still present in a sample, the present modality with the lowest drop probability is kept
    (ties: the first in ``modalities`` order). The effective drop rate of that modality is thus
    lower than its ``p`` (by the probability that all others are dropped too); the rest keep
    exactly ``p``. A sample that arrives with nothing present is left as it is.

    Draws use ``generator`` (on CPU) or torch's global generator, so runs are seeded by the seed.
    """
    given = batch.get(MASKS_KEY) or {}
    first = batch[modalities[0]]
    size, device = len(first), first.device
    present = torch.stack(
        [
            given[m].to(device=device, dtype=torch.bool).reshape(-1)
            if m in given
            else torch.ones(size, dtype=torch.bool, device=device)
            for m in modalities
        ],
        dim=1,
    )  # (B, M)
    p = torch.tensor([float(probs.get(m, 0.0)) for m in modalities])
    draws = torch.rand(size, len(modalities), generator=generator)
    keep = present & (draws >= p).to(device)
    emptied = present.any(dim=1) & ~keep.any(dim=1)
    if emptied.any():
        # lowest p among each sample's present modalities (absent ones pushed past any p)
        rank = torch.where(present, p.to(device), torch.full_like(present, 2.0, dtype=p.dtype))
        rescue = torch.nn.functional.one_hot(rank.argmin(dim=1), len(modalities)).bool()
        keep = keep | (rescue & emptied[:, None])
    return {m: keep[:, i] for i, m in enumerate(modalities)}

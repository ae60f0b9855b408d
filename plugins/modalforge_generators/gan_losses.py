"""GAN objectives on discriminator logits: hinge and non-saturating, plus the R1 penalty."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor
from torch.nn import functional as F

GanLoss = Literal["hinge", "non_saturating"]


def discriminator_loss(
    kind: GanLoss, real: Tensor, fake: Tensor, mismatch: Tensor | None = None, weight: float = 1.0
) -> Tensor:
    """The discriminator's loss on logits of real pairs, generated pairs and (optionally) real
    images with mismatched text, which count as negatives with ``weight`` (GAN-INT-CLS).

    hinge: ``E[relu(1 - real)] + E[relu(1 + fake)]``; non-saturating (the original GAN's
    cross-entropy): ``E[softplus(-real)] + E[softplus(fake)]``.
    """
    neg = F.relu if kind == "hinge" else F.softplus
    offset = 1.0 if kind == "hinge" else 0.0
    loss = neg(offset - real).mean() + neg(offset + fake).mean()
    if mismatch is not None and weight > 0:
        loss = loss + weight * neg(offset + mismatch).mean()
    return loss


def generator_loss(kind: GanLoss, fake: Tensor) -> Tensor:
    """hinge: ``-E[fake]``; non-saturating: ``E[softplus(-fake)]`` (i.e. ``-log sigmoid``)."""
    return -fake.mean() if kind == "hinge" else F.softplus(-fake).mean()


def r1_penalty(logits: Tensor, images: Tensor) -> Tensor:
    """``E ||∇_x D(x)||²`` on real images (Mescheder et al. 2018); ``images`` must require grad."""
    (grad,) = torch.autograd.grad(logits.sum(), images, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def mode_seeking_loss(fake_a: Tensor, fake_b: Tensor, z_a: Tensor, z_b: Tensor) -> Tensor:
    """MSGAN's diversity term (Mao et al. 2019): ``1 / (d(G(z_a), G(z_b)) / d(z_a, z_b) + ε)``
    with mean absolute distances, for two noises under the same conditions. Minimising it makes
    different noise give different images for one prompt (against per-prompt mode collapse)."""
    ratio = (fake_a - fake_b).abs().mean() / (z_a - z_b).abs().mean()
    return 1.0 / (ratio + 1e-5)

"""Vector quantisation (van den Oord et al. 2017) with EMA or gradient codebook updates and
dead-code restarts.

Every vector is replaced by its nearest codebook entry (squared Euclidean distance). The encoder
gets the decoder's gradient through the straight-through estimator ``z + (q - z).detach()``.
The codebook learns either

- ``ema=True``: as exponential moving averages of the vectors assigned to each code (the VQ-VAE
  paper's appendix; no codebook loss, only the commitment loss), or
- ``ema=False``: by gradient, from the codebook loss ``||sg(z) - q||²``.

``cluster_size`` is an EMA of how many vectors each code receives per batch, in both modes. A
code whose ``cluster_size`` falls below ``dead_threshold`` is restarted at an encoder output of
the current batch drawn at random (as Jukebox does), so no code stays unused. At the first step
every code is below the threshold, which initialises the codebook from data.

Under data parallelism (``torch.distributed`` initialised) the counts and sums of the EMA update
are summed over the processes and restarted codes take the first process's vectors, so every
process keeps the same codebook: the one a single process would learn from the whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn import functional as F

from modalforge.engine.gather import is_active


@dataclass
class Quantized:
    """The quantiser's output for vectors ``z (N, D)``."""

    quantized: Tensor  # (N, D): codes' vectors, with straight-through gradient to z
    codes: Tensor  # (N,) long
    commitment: Tensor  # ||z - sg(q)||²
    codebook: Tensor  # ||sg(z) - q||² (0 with EMA updates: the codebook does not learn by grad)


class VectorQuantizer(nn.Module):
    """``num_codes`` vectors of size ``dim``; see the module docstring."""

    def __init__(
        self,
        num_codes: int,
        dim: int,
        *,
        ema: bool = True,
        decay: float = 0.99,
        eps: float = 1e-5,
        dead_threshold: float = 1.0,
    ) -> None:
        super().__init__()
        if num_codes < 2:
            raise ValueError(f"codebook_size must be at least 2, got {num_codes}")
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {decay}")
        if dead_threshold < 0:
            raise ValueError(f"dead_threshold must be >= 0, got {dead_threshold}")
        self.num_codes, self.dim, self.ema = num_codes, dim, ema
        self.decay, self.eps, self.dead_threshold = decay, eps, dead_threshold
        init = torch.empty(num_codes, dim).uniform_(-1.0 / num_codes, 1.0 / num_codes)
        if ema:
            self.register_buffer("embedding", init)
            self.register_buffer("embed_sum", init.clone())
        else:
            self.embedding = nn.Parameter(init)
        self.register_buffer("cluster_size", torch.zeros(num_codes))

    def nearest(self, z: Tensor) -> Tensor:
        """Index of the nearest code of each row of ``z (N, D)``, as ``(N,)`` long."""
        e = self.embedding.float()
        z = z.float()
        dist = z.pow(2).sum(1, keepdim=True) - 2.0 * z @ e.t() + e.pow(2).sum(1)[None]
        return dist.argmin(1)

    def lookup(self, codes: Tensor) -> Tensor:
        """Code vectors for indices of any shape: ``(...,)`` → ``(..., D)``."""
        return F.embedding(codes, self.embedding)

    def forward(self, z: Tensor) -> Quantized:
        """Quantise ``z (N, D)`` (float32 distances whatever the autocast dtype)."""
        z = z.float()
        codes = self.nearest(z.detach())
        q = self.lookup(codes)
        commitment = F.mse_loss(z, q.detach())
        codebook = z.new_zeros(()) if self.ema else F.mse_loss(q, z.detach())
        quantized = z + (q - z).detach()
        return Quantized(quantized, codes, commitment, codebook)

    @torch.no_grad()
    def update(self, z: Tensor, codes: Tensor) -> Tensor:
        """After an optimizer step: EMA codebook update (``ema=True``), usage tracking and dead-code
        restarts. Returns the number of codes restarted (a tensor; no host sync)."""
        z = z.detach().float()
        onehot = F.one_hot(codes, self.num_codes).type_as(z)
        # Under data parallelism every process sees its own batch: summed over processes, the
        # update is the one-process update on the whole batch and the codebooks stay equal.
        counts = _sum_over_processes(onehot.sum(0))
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        if self.ema:
            sums = _sum_over_processes(onehot.t() @ z)
            self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
            self.embedding.copy_(self.ema_embedding())
        return self.restart_dead(z)

    def ema_embedding(self) -> Tensor:
        """``embed_sum / n`` with Laplace-smoothed cluster sizes (no division by zero)."""
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (n + self.num_codes * self.eps) * n
        return self.embed_sum / smoothed.unsqueeze(1)

    @torch.no_grad()
    def restart_dead(self, z: Tensor) -> Tensor:
        """Move codes used less than ``dead_threshold`` times per batch (EMA) onto random rows of
        ``z``; a restarted code starts with a count of 1 at that vector."""
        dead = self.cluster_size < self.dead_threshold
        num_dead = dead.sum()
        if self.dead_threshold <= 0 or z.shape[0] == 0:
            return num_dead.float() * 0
        # A fixed number of draws whatever is dead: the RNG stream stays in step, no host sync.
        picks = z[torch.randint(z.shape[0], (self.num_codes,), device=z.device)]
        picks = _from_first_process(picks)  # every process restarts a code at the same vector
        mask = dead.unsqueeze(1)
        self.embedding.data.copy_(torch.where(mask, picks, self.embedding.data))
        self.cluster_size.copy_(
            torch.where(dead, torch.ones_like(self.cluster_size), self.cluster_size)
        )
        if self.ema:
            self.embed_sum.copy_(torch.where(mask, picks, self.embed_sum))
        return num_dead.float()


def _sum_over_processes(t: Tensor) -> Tensor:
    if is_active():
        t = t.contiguous()
        dist.all_reduce(t)
    return t


def _from_first_process(t: Tensor) -> Tensor:
    if is_active():
        t = t.contiguous()
        dist.broadcast(t, src=0)
    return t


def code_statistics(codes: Tensor, num_codes: int) -> dict[str, Tensor]:
    """Perplexity ``exp(H(p))`` of the codes' batch distribution and the fraction of codes used."""
    flat = codes.flatten()
    counts = torch.zeros(num_codes, device=codes.device).index_add_(
        0, flat, torch.ones(flat.shape, device=codes.device)
    )  # bincount would read the maximum back to the host
    p = counts / counts.sum().clamp_min(1)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()
    return {"perplexity": entropy.exp(), "usage": (counts > 0).float().mean()}

"""All-gather with gradients, for losses that compare samples across data-parallel processes.

A contrastive loss on process ``r`` computes its local rows against the rows of every process.
:func:`gather_with_grad` returns those rows with the autograd graph intact: the gradient that any
process's loss sends into this process's rows comes back here (summed), so after DDP averages
gradients the update equals one process training on the global batch.

Processes may hold different numbers of rows (a reader that skips unreadable samples): sizes are
exchanged on the host over a ``gloo`` group (no GPU synchronisation) and the rows padded for the
collective. :attr:`Gathered.scale` then reweights the local mean so that the average over
processes is the mean over all rows.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.distributed as dist
from torch import Tensor

_size_groups: dict[int, Any] = {}  # id(default group) → gloo group for host-side sizes


def is_active() -> bool:
    """A process group with more than one process is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank_and_world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process; ``(0, 1)`` without a process group."""
    if is_active():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Gathered(NamedTuple):
    """Rows of all processes, where this process's rows start, and the weight of its mean loss.

    ``scale = local rows × processes / all rows`` (1 when every process has as many rows):
    multiplying a mean over the local rows by it makes the average over processes (what DDP
    takes) the mean over all rows.
    """

    rows: Tensor
    offset: int
    scale: float


def gather_with_grad(x: Tensor) -> Gathered:
    """All processes' ``x`` concatenated along dim 0, differentiable (see the module docstring).

    Every process must call it at the same point with the same trailing shape. Without a process
    group: ``Gathered(x, 0, 1.0)``.
    """
    if not is_active():
        return Gathered(x, 0, 1.0)
    rank, world = dist.get_rank(), dist.get_world_size()
    sizes = _exchange_sizes(int(x.shape[0]), world)
    rows = _GatherWithGrad.apply(x, sizes)
    return Gathered(rows, sum(sizes[:rank]), x.shape[0] * world / max(1, sum(sizes)))


def _exchange_sizes(n: int, world: int) -> list[int]:
    group = _size_group()
    out = [torch.zeros(1, dtype=torch.long) for _ in range(world)]
    dist.all_gather(out, torch.tensor([n], dtype=torch.long), group=group)
    return [int(t) for t in out]


def _size_group() -> Any:  # noqa: ANN401 - a ProcessGroup
    """The default group if it is gloo, else one gloo group for host-side integers (made once)."""
    if dist.get_backend() == dist.Backend.GLOO:
        return None
    key = id(dist.group.WORLD)
    if key not in _size_groups:
        _size_groups.clear()  # a new default group: earlier side groups are gone with the old one
        _size_groups[key] = dist.new_group(backend="gloo")
    return _size_groups[key]


def forget_size_groups() -> None:
    """Drop the side groups (before destroying the default group, so they are freed with it)."""
    _size_groups.clear()


class _GatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0 (rows ``sizes[r]`` from process ``r``); backward sums over processes
    the gradient of this process's rows."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, sizes: list[int]) -> Tensor:  # noqa: ANN401
        ctx.sizes, ctx.rank = sizes, dist.get_rank()
        width = max(sizes)
        x = _pad(x.contiguous(), width)
        parts = [torch.empty_like(x) for _ in sizes]
        dist.all_gather(parts, x)
        return torch.cat([p[:n] for p, n in zip(parts, sizes, strict=True)])

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:  # noqa: ANN401
        sizes, rank = ctx.sizes, ctx.rank
        start, n = sum(sizes[:rank]), sizes[rank]
        if dist.get_backend() == dist.Backend.NCCL:
            width = max(sizes)
            chunks = [_pad(c, width) for c in grad.contiguous().split(sizes)]
            out = torch.empty_like(chunks[0])
            dist.reduce_scatter_tensor(out, torch.cat(chunks), op=dist.ReduceOp.SUM)
            return out[:n], None
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)  # gloo has no reduce-scatter
        return grad[start : start + n], None


def _pad(x: Tensor, rows: int) -> Tensor:
    if x.shape[0] == rows:
        return x
    pad = x.new_zeros((rows - x.shape[0], *x.shape[1:]))
    return torch.cat([x, pad])

"""Data-parallel training with ``torch.distributed`` (DDP), started by ``torchrun``.

``torchrun --nproc_per_node N -m modalforge train spec.yaml`` starts N processes; each builds the
same pipeline, and the engine then

- initialises the process group (``nccl`` with one GPU per process, ``cuda:LOCAL_RANK``, else
  ``gloo`` on CPU) and destroys it when the run ends;
- wraps model and loss together in one ``DistributedDataParallel`` module, so gradients of the
  loss's own parameters (a learnable ``logit_scale``) are averaged like the model's;
- gives every process its strided share of each epoch's permutation (same count per process; up
  to N-1 samples of an epoch are left out so that no sample repeats within a global batch);
- lets only process 0 write logs, checkpoints, ``results.json`` and progress bars;
- evaluates on process 0 alone, with the unwrapped model, over the whole evaluation split, while
  the others wait: evaluation results are then exactly those of a single-process run. The result
  is broadcast so every process returns the same numbers.

``data.batch_size`` is per process: the global batch is ``N × batch_size``. Without ``torchrun``
(or with one process) nothing here changes what the engine does. Batch norm layers use each
process's own batch statistics (no SyncBatchNorm); their running statistics come from process 0.
Models with their own training step (GANs) are not wrapped in DDP: the engine broadcasts their
weights once and averages their gradients before each optimizer step.

Losses that compare samples across the batch use :func:`gather_with_grad` while training, so
their result equals a single-process run on the global batch (see ``modalforge_losses``).
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from modalforge.engine.gather import (
    Gathered,
    forget_size_groups,
    gather_with_grad,
    is_active,
    rank_and_world,
)
from modalforge.engine.runtime import select_device
from modalforge.errors import SpecError

__all__ = [
    "DistContext",
    "Gathered",
    "ModelWithLoss",
    "gather_with_grad",
    "is_active",
    "launched_by_torchrun",
    "no_sync",
    "rank_and_world",
    "setup",
]

TIMEOUT_ENV = "MODALFORGE_DIST_TIMEOUT"
_DEFAULT_TIMEOUT_S = 3600  # other processes wait at a barrier while process 0 evaluates


def launched_by_torchrun() -> bool:
    """``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` set and ``WORLD_SIZE > 1``."""
    env = os.environ
    if not all(k in env for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")):
        return False
    try:
        return int(env["WORLD_SIZE"]) > 1
    except ValueError:
        return False


@dataclass
class DistContext:
    """This process's place in the run; a no-op context (rank 0 of 1) without a process group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------------ collectives
    def barrier(self) -> None:
        if not self.enabled:
            return
        if dist.get_backend() == dist.Backend.NCCL:
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()

    def broadcast(self, obj: Any, src: int = 0) -> Any:  # noqa: ANN401
        """``obj`` of process ``src`` on every process (a picklable value)."""
        if not self.enabled:
            return obj
        box = [obj if self.rank == src else None]
        dist.broadcast_object_list(box, src=src)
        return box[0]

    def all_gather_object(self, obj: Any) -> list[Any]:  # noqa: ANN401
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    # ------------------------------------------------------------------ models
    def prepare(
        self, model: nn.Module, loss: nn.Module | None, device: torch.device, *, find_unused: bool
    ) -> tuple[nn.Module | None, Callable[[Iterable[Tensor]], None] | None]:
        """``(DDP module or None, gradient averager or None)`` for training ``model``.

        A model with a loss trains through DDP (:meth:`wrap`); a model that runs its own training
        step (``loss is None``) gets process 0's weights now and a gradient averager for
        :class:`~modalforge.engine.step.StepContext`. Both ``None`` in a single process.
        """
        if not self.enabled:
            return None, None
        if loss is None:
            self.broadcast_module(model)
            return None, self.average_gradients
        return self.wrap(model, loss, device, find_unused=find_unused), None

    def wrap(
        self, model: nn.Module, loss: nn.Module, device: torch.device, *, find_unused: bool = False
    ) -> nn.Module | None:
        """``DistributedDataParallel`` over model and loss together (``None`` in one process).

        Its forward returns ``(outputs, loss_output)``. Wrapping both means the loss's parameters
        (e.g. ``logit_scale``) get averaged gradients too; initial weights come from process 0.
        """
        if not self.enabled:
            return None
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(
            ModelWithLoss(model, loss),
            device_ids=ids,
            output_device=ids[0] if ids else None,
            find_unused_parameters=find_unused,
        )

    def broadcast_module(self, module: nn.Module) -> None:
        """Copy process 0's parameters and buffers to every process (models trained without DDP)."""
        if not self.enabled:
            return
        with torch.no_grad():
            for t in module.state_dict().values():
                if isinstance(t, Tensor):
                    dist.broadcast(t, src=0)

    def average_gradients(self, params: Iterable[Tensor]) -> None:
        """Average ``params``' gradients over processes (for custom training steps, without DDP).

        A parameter with a gradient on any process takes part (as zeros where it has none);
        one that has none anywhere keeps ``None``, so the optimizer skips it as it would in one
        process.
        """
        if not self.enabled:
            return
        params = list(params)
        if not params:
            return
        device = params[0].device
        has = torch.tensor([p.grad is not None for p in params], dtype=torch.int32, device=device)
        dist.all_reduce(has, op=dist.ReduceOp.MAX)
        active = [p for p, h in zip(params, has.tolist(), strict=True) if h]
        for p in active:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        if not active:
            return
        flat = torch.cat([p.grad.reshape(-1) for p in active]).div_(self.world_size)
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for p in active:
            n = p.grad.numel()
            p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
            offset += n

    def all_reduce_mean(self, values: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Each value averaged over processes (keys in a fixed order: one collective)."""
        if not self.enabled or not values:
            return dict(values)
        keys = sorted(values)
        stacked = torch.stack([values[k].float() for k in keys])
        dist.all_reduce(stacked, op=dist.ReduceOp.SUM)
        stacked = stacked / self.world_size
        return {k: stacked[i] for i, k in enumerate(keys)}

    def all_reduce_min(self, value: Tensor) -> Tensor:
        if not self.enabled:
            return value
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
        return value

    def close(self) -> None:
        """Destroy the process group if this context created it.

        Drop DDP modules first: an object still holding the group keeps it (and its gloo worker
        threads) alive until interpreter shutdown, where those threads abort the process.
        """
        forget_size_groups()
        if self.owns_group and dist.is_initialized():
            gc.collect()  # DDP modules in reference cycles hold the group
            dist.destroy_process_group()
        self.owns_group = False


class ModelWithLoss(nn.Module):
    """Model and loss as one module, so DDP sees (and averages) both modules' parameters."""

    def __init__(self, model: nn.Module, loss: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.loss = loss

    def forward(self, batch: Mapping[str, Any]) -> tuple[Any, Any]:
        outputs = self.model(batch)
        return outputs, self.loss(outputs, batch)


def no_sync(ddp: nn.Module | None, sync: bool) -> contextlib.AbstractContextManager:
    """DDP's ``no_sync()`` for micro-batches that only accumulate gradients."""
    if ddp is None or sync:
        return contextlib.nullcontext()
    return ddp.no_sync()


def setup(device_name: str) -> tuple[DistContext, torch.device]:
    """This process's :class:`DistContext` and device, initialising the process group if needed.

    Under ``torchrun`` with more than one process: CUDA devices become ``cuda:LOCAL_RANK`` with
    ``nccl``, CPU uses ``gloo``. A process group initialised by the caller is used as is.
    Otherwise this is :func:`~modalforge.engine.runtime.select_device` in one process.
    """
    if is_active():
        local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
        device = _process_device(device_name, local)
        ctx = DistContext(dist.get_rank(), dist.get_world_size(), local, owns_group=False)
        return ctx, device
    if not launched_by_torchrun():
        return DistContext(), select_device(device_name)
    local = int(os.environ["LOCAL_RANK"])
    device = _process_device(device_name, local)
    backend = "nccl" if device.type == "cuda" else "gloo"
    seconds = int(os.environ.get(TIMEOUT_ENV, _DEFAULT_TIMEOUT_S))
    _import_dynamo()
    dist.init_process_group(backend, timeout=timedelta(seconds=seconds))
    return DistContext(dist.get_rank(), dist.get_world_size(), local, owns_group=True), device


def _import_dynamo() -> None:
    """Import ``torch._dynamo`` before the process group exists.

    Imported later (the optimizers import it), it keeps references to the default group
    (PyTorch 2.14), so ``destroy_process_group`` cannot free it and the group's gloo threads
    crash the process at exit ("terminate called without an active exception"). A process group
    created by the caller should be created after this import too.
    """
    try:
        import torch._dynamo  # noqa: F401
    except ImportError:  # pragma: no cover - builds without dynamo
        pass


def _process_device(name: str, local_rank: int) -> torch.device:
    device = select_device(name)
    if device.type == "mps":
        raise SpecError(
            "train.device",
            "multi-process (torchrun) training is not supported on Apple MPS",
            hint="use `train.device=cpu`, or run a single process",
        )
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise SpecError(
                "train.device",
                f"process with LOCAL_RANK={local_rank} has no GPU of its own ({count} visible)",
                hint=f"start at most one process per GPU (torchrun --nproc_per_node {count})",
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device

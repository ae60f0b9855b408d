"""The optimisation primitives the engine hands to a training step.

Standard pipelines use it internally (one optimizer named ``model``); models implementing
:class:`~modalforge.contracts.CustomTrainStep` (a GAN's generator and discriminator) receive it in
``training_step(batch, ctx)`` and call ``ctx.backward`` / ``ctx.step(name)`` themselves, so that
mixed precision, gradient clipping and learning-rate schedules work the same way for them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping

import torch
from torch import Tensor

from modalforge.engine.runtime import Precision


class StepContext:
    """Named optimizers with their schedulers, autocast and a scaler-aware backward/step."""

    def __init__(
        self,
        optimizers: Mapping[str, torch.optim.Optimizer],
        schedulers: Mapping[str, torch.optim.lr_scheduler.LRScheduler] | None = None,
        *,
        precision: Precision,
        clip_grad_norm: float | None = None,
        grad_sync: Callable[[Iterable[Tensor]], None] | None = None,
    ) -> None:
        self.optimizers: dict[str, torch.optim.Optimizer] = dict(optimizers)
        # Averages gradients over data-parallel processes before a step (models without DDP).
        self.grad_sync = grad_sync
        self.schedulers = dict(schedulers or {})
        self.precision = precision
        self.clip_grad_norm = clip_grad_norm
        self.global_step = 0
        # Gradient norms before clipping, as device tensors (read them at log time only).
        self.grad_norms: dict[str, Tensor] = {}
        self._stepped = False

    @property
    def device(self) -> torch.device:
        return self.precision.device

    @property
    def scaler(self) -> torch.amp.GradScaler | None:
        return self.precision.scaler

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast for the run's precision (no-op for fp32)."""
        return self.precision.context()

    def backward(self, loss: Tensor, *, retain_graph: bool = False) -> None:
        """Back-propagate ``loss``, scaled for fp16 when a gradient scaler is active."""
        if self.scaler is not None:
            loss = self.scaler.scale(loss)
        loss.backward(retain_graph=retain_graph)

    def params(self, name: str) -> list[Tensor]:
        return [p for g in self._get(name).param_groups for p in g["params"]]

    def step(self, name: str) -> None:
        """Unscale, clip by ``train.clip_grad_norm``, step, zero the grads, advance the schedule."""
        opt = self._get(name)
        if self.grad_sync is not None:
            self.grad_sync(self.params(name))
        if self.scaler is not None:
            self.scaler.unscale_(opt)
        if self.clip_grad_norm is not None:
            params = [p for p in self.params(name) if p.grad is not None]
            if params:
                self.grad_norms[name] = torch.nn.utils.clip_grad_norm_(params, self.clip_grad_norm)
        if self.scaler is not None:
            self.scaler.step(opt)
        else:
            opt.step()
        opt.zero_grad(set_to_none=True)
        self._stepped = True
        sched = self.schedulers.get(name)
        if sched is not None:
            sched.step()

    def zero_grad(self, name: str | None = None) -> None:
        """Clear gradients of one optimizer, or of all of them."""
        for opt in [self._get(name)] if name else self.optimizers.values():
            opt.zero_grad(set_to_none=True)

    def lr(self, name: str) -> float:
        """The current learning rate of ``name``'s first param group (a python float, no sync)."""
        lr = self._get(name).param_groups[0]["lr"]
        return float(lr) if not isinstance(lr, Tensor) else float(lr.detach().cpu())

    def finish(self) -> None:
        """End of one training step: update the fp16 loss scale once, after every optimizer."""
        if self.scaler is not None and self._stepped:
            self.scaler.update()
        self._stepped = False
        self.global_step += 1

    def _get(self, name: str) -> torch.optim.Optimizer:
        try:
            return self.optimizers[name]
        except KeyError:
            have = ", ".join(repr(n) for n in self.optimizers) or "none"
            raise KeyError(f"no optimizer named {name!r}; configured: {have}") from None

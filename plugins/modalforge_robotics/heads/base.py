"""The action-head contract (what a policy's rollout calls) and the common part of action losses.

An action data set's target is a chunk of the next ``k`` actions of ``A`` dimensions,
``Target("regression", k * A, shape=(k, A))``; batches carry ``target`` float ``(B, k, A)`` in
``[-1, 1]`` (normalised) and, where windows were padded past an episode's end, ``action_is_pad``
bool ``(B, k)``. Every action loss ignores the padded steps.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import Tensor, nn

from modalforge.contracts import TARGET_KEY, Head, Loss, Target, TargetKind
from modalforge.errors import DataError, SpecError
from modalforge_heads.mlp import head_mlp

ACTION_PAD_KEY = "action_is_pad"

_TARGET_HINT = (
    "action heads predict a chunk of k actions of A dimensions: use an action data set, whose "
    "target is Target('regression', k * A, shape=(k, A))"
)


def action_shape(target: Target | None, path: str, component: str) -> tuple[int, int]:
    """``(k, A)`` of an action-chunk target, or a :class:`SpecError` naming ``path``."""
    if target is None:
        raise SpecError(path, f"{component} needs the data set's target", hint=_TARGET_HINT)
    if target.kind is not TargetKind.REGRESSION:
        raise SpecError(
            path,
            f"{component} predicts actions (a regression target), but the data set's target is "
            f"{target.kind}",
            hint=_TARGET_HINT,
        )
    if len(target.shape) != 2:
        got = f"shape {target.shape}" if target.shape else f"no shape ({target.num_outputs} flat)"
        raise SpecError(
            path,
            f"{component} needs a target shaped (k, A) (action chunk), but the data set's "
            f"target has {got}",
            hint=_TARGET_HINT,
        )
    k, a = target.shape
    return k, a


def action_mlp(
    in_dim: int, hidden_dims: list[int], out_dim: int, dropout: float, path: str = "model.head"
) -> nn.Sequential:
    """:func:`modalforge_heads.mlp.head_mlp`, with bad widths / dropout as a :class:`SpecError`."""
    try:
        return head_mlp(in_dim, list(hidden_dims), out_dim, dropout)
    except ValueError as exc:
        raise SpecError(f"{path}.params", str(exc)) from None


def draw_categorical(probs: Tensor, generator: torch.Generator | None) -> Tensor:
    """One index per row of ``probs`` ``(N, C)``, drawn with ``generator`` (on its device)."""
    source = generator.device if generator is not None else probs.device
    drawn = torch.multinomial(probs.to(source), 1, generator=generator)
    return drawn.to(probs.device).squeeze(-1)


def draw_normal(like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normal noise shaped, typed and placed like ``like``, drawn with ``generator``."""
    source = generator.device if generator is not None else like.device
    return torch.randn(like.shape, generator=generator, device=source).to(like)


class ActionHead(Head):
    """A policy's action head: features ``(B, in_dim)`` in, an action-chunk distribution out.

    Sized from ``in_dim`` and the data set's target shape ``(k, A)`` (:attr:`horizon`,
    :attr:`action_dim`). :meth:`forward` returns the head's raw output (stored under
    :attr:`output_key`, which its loss reads); :meth:`act` turns the model's outputs into the
    action chunk to execute.

    **The rollout contract**: ``chunk = model.head.act(model(batch))`` gives float ``(B, k, A)``
    in the normalised ``[-1, 1]`` action space (the rollout un-normalises with the data set's
    statistics). ``act`` is deterministic (the most likely action) unless ``sample=True``, which
    draws from the head's distribution using ``generator`` (a ``torch.Generator``) when given.
    """

    output_key: ClassVar[str] = "action"
    name: ClassVar[str] = "action"

    def __init__(self, in_dim: int, target: Target) -> None:
        super().__init__(in_dim)
        self.horizon, self.action_dim = action_shape(target, "model.head", f"head {self.name!r}")
        self.target = target

    @abstractmethod
    def act(
        self,
        outputs: Mapping[str, Tensor],
        sample: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """The normalised action chunk ``(B, k, A)`` to execute, from the model's outputs."""

    def _own(self, outputs: Mapping[str, Tensor]) -> Tensor:
        if self.output_key not in outputs:
            raise KeyError(
                f"head {self.name!r} acts on model output {self.output_key!r}, but the outputs "
                f"have {', '.join(map(repr, outputs))}"
            )
        return outputs[self.output_key]


class ActionLoss(Loss):
    """Reads the head's output (``output_key``), the batch's ``target`` chunk and its padding.

    Subclasses compute a per-step loss ``(B, k)``; :meth:`reduce` averages it over the steps that
    are not padding (all steps when the batch has no ``action_is_pad``).
    """

    name: ClassVar[str] = ""
    head: ClassVar[str] = ""  # the head whose output this loss reads (for the hint)

    def __init__(self, target: Target | None, output_key: str) -> None:
        super().__init__()
        self.output_key = output_key
        self.shape: tuple[int, int] | None = None
        if target is not None:
            self.shape = action_shape(target, "loss", f"loss {self.name!r}")

    def inputs(
        self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]
    ) -> tuple[Tensor, Tensor]:
        """The head's output and the target as float ``(B, k, A)``."""
        if self.output_key not in outputs:
            raise SpecError(
                "loss.params.output_key",
                f"{self.name} reads model output {self.output_key!r}, but the model gives "
                f"{', '.join(map(repr, outputs))}",
                hint=f"use `head: {self.head}` with this loss, or set output_key to its output",
            )
        if TARGET_KEY not in batch:
            raise DataError(
                f"{self.name} needs a {TARGET_KEY!r} action chunk in each batch, but the data set "
                "has no targets",
                hint="use an action data set (episodes with actions)",
            )
        y = batch[TARGET_KEY].float()
        if self.shape is not None and y.dim() >= 1 and y[0].numel() == math.prod(self.shape):
            y = y.reshape(y.shape[0], *self.shape)
        if y.dim() != 3 or (self.shape is not None and tuple(y.shape[1:]) != self.shape):
            raise DataError(
                f"{self.name} needs targets shaped (B, k, A)"
                + (f" with (k, A) = {self.shape}" if self.shape else "")
                + f", got {tuple(y.shape)}",
                hint="use an action data set, whose target is a (k, A) chunk per sample",
            )
        return outputs[self.output_key], y

    def check_chunks(self, predicted: tuple[int, ...], target: Tensor) -> None:
        """A :class:`DataError` when the head's chunk ``(B, k, A)`` is not the target's."""
        if tuple(predicted) != tuple(target.shape):
            raise DataError(
                f"{self.name}: the head predicts action chunks {tuple(predicted)}, but the "
                f"batch's targets are {tuple(target.shape)} (batch, steps, action dims)",
                hint="size the head from the same data set (its target shape (k, A))",
            )

    def reduce(self, per_step: Tensor, batch: Mapping[str, Tensor]) -> Tensor:
        """Mean of ``per_step`` ``(B, k)`` over the steps not marked in ``action_is_pad``."""
        pad = batch.get(ACTION_PAD_KEY)
        if pad is None:
            return per_step.mean()
        if tuple(pad.shape) != tuple(per_step.shape):
            raise DataError(
                f"{ACTION_PAD_KEY!r} has shape {tuple(pad.shape)}, but the action chunks are "
                f"{tuple(per_step.shape)} (batch, steps)",
                hint=f"the data set's {ACTION_PAD_KEY!r} must be bool (k,) per sample",
            )
        valid = (~pad.bool()).to(per_step.dtype)
        return (per_step * valid).sum() / valid.sum().clamp_min(1.0)

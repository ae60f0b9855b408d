"""Contrastive losses over two embedding outputs: ``clip`` (InfoNCE) and ``siglip`` (sigmoid).

Both read ``outputs["embed.<a>"]`` and ``outputs["embed.<b>"]`` for ``pair = (a, b)`` (what the
contrastive model produces), own a learnable temperature ``logit_scale`` (a log scale, clamped
after every optimizer step as in open_clip) and match open_clip's ``ClipLoss`` / ``SigLipLoss``.

Data parallel: while training under ``torch.distributed`` they gather the other processes'
embeddings *with* gradients and compute the local rows against all columns (open_clip's
``local_loss=True, gather_with_grad=True``), so that after DDP averages gradients the update is
exactly that of one process on the global batch (also when processes hold different numbers
of rows: the local mean is reweighted). In eval mode they use the local batch only (the engine
evaluates whole batches on one process).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from modalforge.contracts import Loss, LossOutput
from modalforge.engine.gather import Gathered, gather_with_grad
from modalforge.errors import SpecError

CLIP_SCALE_INIT = math.log(1 / 0.07)
MAX_LOGIT_SCALE = math.log(100)


def _embed_key(modality: str) -> str:
    return f"embed.{modality}"


class _PairLoss(Loss):
    """Common part: the two embedding outputs and the clamped, optionally learnable log scale."""

    name = ""

    def __init__(
        self,
        pair: tuple[str, str],
        logit_scale_init: float,
        learnable_scale: bool,
        max_logit_scale: float | None,
    ) -> None:
        super().__init__()
        pair = tuple(pair)
        if len(pair) != 2 or pair[0] == pair[1]:
            raise SpecError(
                "loss.params.pair",
                f"needs two different modality names, got {list(pair)}",
                hint="e.g. pair: [image, text]",
            )
        if max_logit_scale is not None and max_logit_scale < 0:
            raise SpecError("loss.params.max_logit_scale", f"must be >= 0, got {max_logit_scale}")
        self.pair = pair
        self.max_logit_scale = max_logit_scale
        _add_scalar(self, "logit_scale", logit_scale_init, learnable_scale)

    def _embeddings(self, outputs: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        keys = [_embed_key(m) for m in self.pair]
        missing = [k for k in keys if k not in outputs]
        if missing:
            raise SpecError(
                "loss.params.pair",
                f"{self.name} reads model outputs {', '.join(map(repr, keys))}, but the model "
                f"gives {', '.join(map(repr, outputs)) or 'nothing'}",
                hint="use a contrastive model (model.type: contrastive) with encoders for both "
                "modalities, and set pair to their names",
            )
        a, b = (outputs[k].float() for k in keys)
        if a.shape != b.shape or a.ndim != 2:
            raise SpecError(
                "loss.params.pair",
                f"{self.name} needs two (batch, dim) embeddings of one shape, got "
                f"{tuple(a.shape)} and {tuple(b.shape)}",
                hint="give both modalities the same model.embed_dim",
            )
        return a, b

    def after_optimizer_step(self) -> None:
        """Clamp ``logit_scale`` to ``[0, max_logit_scale]`` (open_clip: ln 100)."""
        if self.max_logit_scale is not None:
            with torch.no_grad():
                self.logit_scale.clamp_(0.0, self.max_logit_scale)

    def _gathered(self, x: Tensor) -> Gathered:
        """All processes' rows (with gradients), when training; else the local rows."""
        return gather_with_grad(x) if self.training else Gathered(x, 0, 1.0)


def _add_scalar(module: nn.Module, name: str, value: float, learnable: bool) -> None:
    """A scalar parameter (or a fixed buffer); the engine never decays ``logit_*`` names."""
    t = torch.tensor(float(value))
    if learnable:
        module.register_parameter(name, nn.Parameter(t))
    else:
        module.register_buffer(name, t)


class ClipLoss(_PairLoss):
    """CLIP's symmetric InfoNCE: cross-entropy of ``a→b`` and ``b→a`` similarities, averaged.

    Logits are ``exp(logit_scale) · a @ bᵀ``; the matching pair of each row is its positive.
    Parts: ``contrastive`` (the loss) and ``logit_scale`` (the current ``exp(logit_scale)``).
    """

    name = "clip"

    def __init__(
        self,
        pair: tuple[str, str] = ("image", "text"),
        logit_scale_init: float = CLIP_SCALE_INIT,
        learnable_scale: bool = True,
        max_logit_scale: float | None = MAX_LOGIT_SCALE,
    ) -> None:
        super().__init__(pair, logit_scale_init, learnable_scale, max_logit_scale)

    def forward(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> LossOutput:
        a, b = self._embeddings(outputs)
        all_a, all_b = self._gathered(a), self._gathered(b)
        scale = self.logit_scale.exp()
        labels = torch.arange(a.shape[0], device=a.device) + all_a.offset
        a_to_b = F.cross_entropy(scale * a @ all_b.rows.T, labels)
        b_to_a = F.cross_entropy(scale * b @ all_a.rows.T, labels)
        loss = (a_to_b + b_to_a) / 2 * all_a.scale
        return LossOutput(loss, {"contrastive": loss, "logit_scale": scale.detach()})


class SigLipLoss(_PairLoss):
    """SigLIP's pairwise sigmoid loss: every (a_i, b_j) is a binary match / no-match problem.

    Logits are ``exp(logit_scale) · a @ bᵀ + logit_bias``; the sum of ``-log σ(±logit)`` over all
    pairs is divided by the batch size (per process, as open_clip). Parts: ``contrastive``,
    ``logit_scale`` (``exp``) and ``logit_bias``.
    """

    name = "siglip"

    def __init__(
        self,
        pair: tuple[str, str] = ("image", "text"),
        logit_scale_init: float = math.log(10),
        logit_bias_init: float = -10.0,
        learnable_scale: bool = True,
        learnable_bias: bool = True,
        max_logit_scale: float | None = MAX_LOGIT_SCALE,
    ) -> None:
        super().__init__(pair, logit_scale_init, learnable_scale, max_logit_scale)
        _add_scalar(self, "logit_bias", logit_bias_init, learnable_bias)

    def forward(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> LossOutput:
        a, b = self._embeddings(outputs)
        all_b = self._gathered(b)  # only b is exchanged, as in open_clip
        n = a.shape[0]
        scale = self.logit_scale.exp()
        logits = scale * a @ all_b.rows.T + self.logit_bias
        signs = -torch.ones_like(logits)
        rows = torch.arange(n, device=a.device)
        signs[rows, rows + all_b.offset] = 1.0
        loss = -F.logsigmoid(signs * logits).sum() / n * all_b.scale
        parts = {"contrastive": loss, "logit_scale": scale.detach()}
        parts["logit_bias"] = self.logit_bias.detach().clone()
        return LossOutput(loss, parts)

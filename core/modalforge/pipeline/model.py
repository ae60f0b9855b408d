"""The supervised multimodal model: encoders per modality → fusion → head."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from modalforge.contracts import MASKS_KEY, Encoder, FeatureSpec, Fusion, Head
from modalforge.pipeline.dropout import check_dropout, dropout_masks


class MultimodalModel(nn.Module):
    """Composes registered components; outputs a dict with ``features`` and the head's key.

    With a single encoder the fusion may be omitted and the encoder's pooled output feeds the head.
    ``modality_dropout`` maps modality names to drop probabilities in ``[0, 1)``: in training
    mode each sample loses modality ``m`` with probability ``p_m`` (its presence mask is set
    False; see :func:`modalforge.pipeline.dropout.dropout_masks` for the rule that keeps one
    modality per sample). The encoders still run; the fusion sees the masks. No dropout in eval.

    A conditioned encoder (:attr:`Encoder.condition_on`) runs after the encoders it names and
    gets their pooled features, concatenated, as its second argument.
    """

    def __init__(
        self,
        encoders: Mapping[str, Encoder],
        fusion: Fusion | None,
        head: Head,
        modality_dropout: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        if fusion is None and len(encoders) != 1:
            raise ValueError("a fusion is required with more than one encoder")
        self.encoders = nn.ModuleDict(dict(encoders))
        self._conditions = {m: tuple(getattr(e, "condition_on", ())) for m, e in encoders.items()}
        for name, conds in self._conditions.items():
            bad = [c for c in conds if c not in encoders or c == name or self._conditions[c]]
            if bad:
                raise ValueError(
                    f"encoder {name!r} is conditioned on {bad}, which are not other, "
                    "unconditioned encoders of this model"
                )
        # conditions first; within each group the encoders' own order
        self._order = sorted(self.encoders, key=lambda m: bool(self._conditions[m]))
        self._is_condition = {c for conds in self._conditions.values() for c in conds}
        self.fusion = fusion
        self.head = head
        self.modality_dropout = check_dropout(modality_dropout or {}, tuple(self.encoders))
        if fusion is None and any(p > 0 for p in self.modality_dropout.values()):
            raise ValueError("modality dropout needs a fusion (a single encoder cannot be dropped)")

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.encoders)

    @property
    def feature_spec(self) -> FeatureSpec:
        if self.fusion is not None:
            return self.fusion.output
        return next(iter(self.encoders.values())).output

    def encode(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Per-modality features; token-level where the fusion consumes tokens."""
        out: dict[str, Tensor] = {}
        pooled: dict[str, Tensor] = {}
        for name in self._order:
            encoder = self.encoders[name]
            wants_tokens = self.fusion is not None and self.fusion.in_features[name].tokens
            args = (batch[name],)
            if self._conditions[name]:
                args += (torch.cat([pooled[c] for c in self._conditions[name]], dim=-1),)
            out[name] = encoder.forward_tokens(*args) if wants_tokens else encoder(*args)
            if name in self._is_condition:
                pooled[name] = encoder(*args) if wants_tokens else out[name]
        return {name: out[name] for name in self.encoders}

    def pooled_features(self, name: str, batch: Mapping[str, Tensor]) -> Tensor:
        """Encoder ``name``'s pooled features ``(B, D)`` for ``batch`` (which must hold the
        inputs of the encoders it is conditioned on, e.g. the instruction of a FiLM trunk)."""
        encoder = self.encoders[name]
        conds = self._conditions[name]
        if not conds:
            return encoder(batch[name])
        condition = torch.cat([self.encoders[c](batch[c]) for c in conds], dim=-1)
        return encoder(batch[name], condition)

    def masks(self, batch: Mapping[str, Tensor]) -> Mapping[str, Tensor] | None:
        """The presence masks the fusion sees: the batch's, plus modality dropout in training."""
        if not (self.training and any(p > 0 for p in self.modality_dropout.values())):
            return batch.get(MASKS_KEY)
        return dropout_masks(batch, self.modalities, self.modality_dropout)

    def forward(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        per_modality = self.encode(batch)
        if self.fusion is None:
            features = next(iter(per_modality.values()))
        else:
            features = self.fusion(per_modality, self.masks(batch))
        return {"features": features, self.head.output_key: self.head(features)}

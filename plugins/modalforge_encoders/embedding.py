"""``embedding``: learned embeddings of text token ids, mean-pooled over non-padding tokens."""

from __future__ import annotations

from torch import Tensor, nn

from modalforge.contracts import Encoder, FeatureSpec
from modalforge.modality import Modality, ModalityKind
from modalforge_encoders.layers import check_positive


class EmbeddingEncoder(Encoder):
    """Embeds token ids ``(B, L)`` and averages the non-padding positions into ``(B, dim)``.

    A bag-of-embeddings baseline: cheap, order-free, and a reference point for transformer encoders.
    """

    accepts = (ModalityKind.TEXT,)

    def __init__(
        self,
        modality: Modality,
        vocab_size: int,
        dim: int = 128,
        padding_idx: int | None = 0,
    ) -> None:
        super().__init__(modality)
        check_positive("vocab_size", [vocab_size])
        check_positive("dim", [dim])
        if padding_idx is not None and not 0 <= padding_idx < vocab_size:
            raise ValueError(f"padding_idx {padding_idx} is outside [0, vocab_size={vocab_size})")
        self.padding_idx = padding_idx
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=padding_idx)
        self._output = FeatureSpec(dim, tokens=True)

    @property
    def output(self) -> FeatureSpec:
        return self._output

    def forward_tokens(self, x: Tensor) -> Tensor:
        return self.embed(x.long())

    def forward(self, x: Tensor) -> Tensor:
        ids = x.long()
        tokens = self.embed(ids)
        if self.padding_idx is None:
            return tokens.mean(dim=1)
        keep = (ids != self.padding_idx).unsqueeze(-1).to(tokens.dtype)
        count = keep.sum(dim=1).clamp_min(1.0)
        return (tokens * keep).sum(dim=1) / count

    def extra_repr(self) -> str:
        return f"padding_idx={self.padding_idx}"

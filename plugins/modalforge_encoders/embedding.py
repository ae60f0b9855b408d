"""``embedding``: learned embeddings of text token ids, mean-pooled over non-padding tokens."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from modalforge.contracts import Encoder, FeatureSpec
from modalforge.errors import SpecError
from modalforge.modality import Modality, ModalityKind
from modalforge.text.tokenizers import (
    BYTE_VOCAB_SIZE,
    ByteTokenizer,
    CaptionTokenizer,
    HashedWordTokenizer,
)
from modalforge_encoders.layers import check_positive


class EmbeddingEncoder(Encoder):
    """Embeds token ids ``(B, L)`` and averages the non-padding positions into ``(B, dim)``.

    A bag-of-embeddings baseline: cheap, order-free, and a reference point for transformer encoders.
    Its features are the mean of its words' embeddings, so they add up over the words of a
    sentence: a new combination of known words ("push the red block to the right goal" when
    red was only ever pushed left) lands where its words put it, not anywhere.

    ``tokenizer`` lets it read raw text: ``words`` (hashed words, see
    :class:`~modalforge.text.tokenizers.HashedWordTokenizer`) or ``bytes``, padded to
    ``context_length``; without it, samples must already be token ids.
    """

    accepts = (ModalityKind.TEXT,)

    def __init__(
        self,
        modality: Modality,
        vocab_size: int,
        dim: int = 128,
        padding_idx: int | None = 0,
        tokenizer: Literal["words", "bytes"] | None = None,
        context_length: int = 32,
    ) -> None:
        super().__init__(modality)
        check_positive("vocab_size", [vocab_size])
        check_positive("dim", [dim])
        if padding_idx is not None and not 0 <= padding_idx < vocab_size:
            raise ValueError(f"padding_idx {padding_idx} is outside [0, vocab_size={vocab_size})")
        self.padding_idx = padding_idx
        self.tokenizer = _tokenizer(tokenizer, vocab_size, context_length, padding_idx)
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

    def preprocess(self) -> CaptionTokenizer | None:
        """The tokenizer for raw-text samples (``tokenizer``), else ``None`` (token ids)."""
        return self.tokenizer

    def extra_repr(self) -> str:
        return f"padding_idx={self.padding_idx}"


def _tokenizer(
    kind: str | None, vocab_size: int, context_length: int, padding_idx: int | None
) -> CaptionTokenizer | None:
    if kind is None:
        return None
    if kind not in ("words", "bytes"):
        raise SpecError("tokenizer", f"must be 'words' or 'bytes', got {kind!r}")
    if padding_idx != 0:
        raise SpecError("padding_idx", "the tokenizers pad with 0; set padding_idx: 0")
    if kind == "bytes":
        if vocab_size < BYTE_VOCAB_SIZE:
            raise SpecError(
                "vocab_size",
                f"byte tokens need vocab_size >= {BYTE_VOCAB_SIZE}, got {vocab_size}",
            )
        return ByteTokenizer(context_length)
    return HashedWordTokenizer(vocab_size, context_length)

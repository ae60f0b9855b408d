"""Caption and report text steps applied to raw strings before the text encoder's tokenizer."""

from __future__ import annotations

import re
from typing import Any

from modalforge.contracts import Transform
from modalforge.modality import Modality, ModalityKind

_SPACE = re.compile(r"\s+")


class Lowercase(Transform):
    """Lower-case the text (for tokenizers trained on lower-cased text, e.g. uncased BERT)."""

    accepts = (ModalityKind.TEXT,)
    raw = True

    def __call__(self, sample: Any) -> str:  # noqa: ANN401
        return str(sample).lower()


class NormalizeWhitespace(Transform):
    """Collapse runs of spaces, tabs and line breaks into single spaces and trim the ends
    (reports exported from clinical systems are full of them)."""

    accepts = (ModalityKind.TEXT,)
    raw = True

    def __call__(self, sample: Any) -> str:  # noqa: ANN401
        return _SPACE.sub(" ", str(sample)).strip()


class Truncate(Transform):
    """Keep the first ``max_words`` words and / or ``max_chars`` characters of the text, so a
    long report keeps its beginning whatever the tokenizer's limit."""

    accepts = (ModalityKind.TEXT,)
    raw = True

    def __init__(
        self, modality: Modality, max_words: int | None = None, max_chars: int | None = None
    ) -> None:
        super().__init__(modality)
        if max_words is None and max_chars is None:
            raise ValueError("set max_words, max_chars or both")
        for name, value in (("max_words", max_words), ("max_chars", max_chars)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be positive, got {value}")
        self.max_words, self.max_chars = max_words, max_chars

    def __call__(self, sample: Any) -> str:  # noqa: ANN401
        text = str(sample)
        if self.max_words is not None:
            words = text.split()
            if len(words) > self.max_words:
                text = " ".join(words[: self.max_words])
        if self.max_chars is not None:
            text = text[: self.max_chars]
        return text

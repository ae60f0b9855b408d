"""Caption and report text steps applied to raw strings before the text encoder's tokenizer."""

from __future__ import annotations

import re
from typing import Any

import torch

from modalforge.contracts import Transform
from modalforge.modality import Modality, ModalityKind

_SPACE = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")


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


class SampleSentences(Transform):
    """Keep a random subset of the text's sentences (between ``min_count`` and ``max_count``,
    in their original order): a training augmentation for report–image pretraining.

    A report states several findings at once; trained on its sentences one or two at a time,
    a text encoder learns what each sentence ("no lesion in the left lobe.") says about the
    image, which is what a zero-shot prompt of one sentence asks of it (sentence sampling as
    in GLoRIA / BioViL). Sentences end at ``.``, ``!``, ``?`` or ``;`` followed by a space. A
    text with no more sentences than the count drawn stays whole.
    """

    accepts = (ModalityKind.TEXT,)
    raw = True
    random = True

    def __init__(
        self, modality: Modality, min_count: int = 1, max_count: int | None = None
    ) -> None:
        super().__init__(modality)
        if min_count < 1:
            raise ValueError(f"min_count must be at least 1, got {min_count}")
        if max_count is not None and max_count < min_count:
            raise ValueError(f"max_count ({max_count}) must be at least min_count ({min_count})")
        self.min_count, self.max_count = min_count, max_count

    def __call__(self, sample: Any) -> str:  # noqa: ANN401
        sentences = [s for s in _SENTENCE_END.split(str(sample).strip()) if s]
        n = len(sentences)
        low = min(self.min_count, n)
        high = n if self.max_count is None else min(self.max_count, n)
        count = low if high <= low else int(torch.randint(low, high + 1, ()))
        if count >= n:
            return " ".join(sentences)
        keep = sorted(torch.randperm(n)[:count].tolist())
        return " ".join(sentences[i] for i in keep)

"""A picklable caption tokenizer around a transformers tokenizer saved in a local folder.

``HFTokenize(folder, max_length)`` turns one caption into fixed-length ``input_ids``
``LongTensor (max_length,)``, or, with ``with_mask=True``, a ``LongTensor (2, max_length)``
stacking ``input_ids`` and ``attention_mask``, so the default collate batches it to
``(B, 2, max_length)``. Longer captions are truncated by the tokenizer (its special tokens kept);
each instance counts them in ``truncated`` and warns at the first one. The tokenizer is loaded
lazily and again in each data-loader worker; only the folder path is pickled.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from modalforge.errors import DataError


class HFTokenize:
    """Caption ``str`` → ``input_ids`` (or ``input_ids`` + ``attention_mask``), fixed length."""

    def __init__(
        self, folder: str | Path, max_length: int, *, with_mask: bool = False, field: str = ""
    ) -> None:
        if max_length < 2:
            raise ValueError(f"max_length must be at least 2, got {max_length}")
        self.folder = str(folder)
        self.max_length = max_length
        self.with_mask = with_mask
        self.field = field or f"tokenizer folder {self.folder}"  # names the param in errors
        self.truncated = 0
        self._warned = False
        self._tok: Any = None

    @property
    def tokenizer(self) -> Any:
        if self._tok is None:
            from modalforge_transformers.local import load_tokenizer

            tok = load_tokenizer(Path(self.folder), self.field)
            if tok.pad_token is None and tok.eos_token is not None:  # e.g. GPT-2 style tokenizers
                tok.pad_token = tok.eos_token
            self._tok = tok
        return self._tok

    def __call__(self, caption: str | Sequence[str]) -> Tensor:
        """One caption → ``(max_length,)`` or ``(2, max_length)``; a list adds a leading axis."""
        if isinstance(caption, str):
            return self._one(caption)
        if isinstance(caption, Sequence) and all(isinstance(c, str) for c in caption):
            return torch.stack([self._one(c) for c in caption])
        raise DataError(
            f"a caption must be a str (or a list of str), got {type(caption).__name__}",
            hint="declare the text modality with dtype 'str' only when samples are strings",
        )

    def _one(self, caption: str) -> Tensor:
        tok = self.tokenizer
        full = len(tok(caption, truncation=False)["input_ids"])
        if full > self.max_length:
            self._note_truncation(caption, full)
        enc = tok(caption, truncation=True, max_length=self.max_length, padding="max_length")
        ids = torch.tensor(enc["input_ids"], dtype=torch.long)
        if not self.with_mask:
            return ids
        return torch.stack([ids, torch.tensor(enc["attention_mask"], dtype=torch.long)])

    def _note_truncation(self, caption: str, length: int) -> None:
        self.truncated += 1
        if not self._warned:
            self._warned = True
            shown = caption if len(caption) <= 60 else caption[:57] + "..."
            warnings.warn(
                f"caption {shown!r} has {length} tokens, more than max_length={self.max_length}, "
                "and was truncated; further truncations are counted in the tokenizer's "
                "`truncated` attribute, not warned",
                UserWarning,
                stacklevel=4,
            )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_tok"] = None
        return state

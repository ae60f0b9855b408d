"""A picklable caption tokenizer around a transformers tokenizer saved in a local folder.

``HFTokenize(folder, max_length)`` turns one caption into ``input_ids`` ``LongTensor (L,)``, or,
with ``with_mask=True``, a ``LongTensor (2, L)`` stacking ``input_ids`` and ``attention_mask``.
With ``padding="max_length"`` every caption has ``L = max_length`` and the default collate
batches them; with ``padding="longest"`` each caption keeps its own length (at most
``max_length``) and :meth:`HFTokenize.collate` pads a batch to its longest caption, which is much
faster on short captions. Longer captions are truncated by the tokenizer (its special tokens
kept); each instance counts them in ``truncated`` and warns at the first one. The tokenizer is
loaded lazily and again in each data-loader worker; only the folder path is pickled.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from modalforge.errors import DataError

Padding = Literal["longest", "max_length"]


class PadCollate:
    """Batches right-padded token samples ``(L_i,)`` or ``(2, L_i)`` (ids, mask) to the longest
    ``L_i`` (or to a fixed ``length``): ids are padded with ``pad_id``, the mask with 0."""

    def __init__(self, pad_id: int, *, length: int | None = None) -> None:
        self.pad_id = int(pad_id)
        self.length = length

    def __call__(self, samples: list[Tensor]) -> Tensor:
        if not samples:
            raise ValueError("PadCollate needs at least one sample")
        length = self.length or max(int(s.shape[-1]) for s in samples)
        first = samples[0]
        out = torch.full((len(samples), *first.shape[:-1], length), self.pad_id, dtype=first.dtype)
        if first.ndim == 2:  # (ids, mask): padded positions are masked out
            out[:, 1:] = 0
        for i, s in enumerate(samples):
            out[i, ..., : s.shape[-1]] = s
        return out

    def __repr__(self) -> str:
        return f"PadCollate(pad_id={self.pad_id}, length={self.length})"


class HFTokenize:
    """Caption ``str`` → ``input_ids`` (or ``input_ids`` + ``attention_mask``)."""

    def __init__(
        self,
        folder: str | Path,
        max_length: int,
        *,
        with_mask: bool = False,
        field: str = "",
        padding: Padding = "max_length",
    ) -> None:
        if max_length < 2:
            raise ValueError(f"max_length must be at least 2, got {max_length}")
        if padding not in ("longest", "max_length"):
            raise ValueError(f"padding must be 'longest' or 'max_length', got {padding!r}")
        self.folder = str(folder)
        self.max_length = max_length
        self.with_mask = with_mask
        self.padding = padding
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

    @property
    def pad_id(self) -> int:
        """The tokenizer's padding id (0 if it has none)."""
        pad = self.tokenizer.pad_token_id
        return 0 if pad is None else int(pad)

    def collate(self, *, length: int | None = None) -> PadCollate | None:
        """The batching function for ``padding="longest"`` samples (``None`` for max-length
        padding, whose samples stack as they are); ``length`` pads to a fixed length instead."""
        if self.padding == "max_length":
            return None
        return PadCollate(self.pad_id, length=length)

    def __call__(self, caption: str | Sequence[str]) -> Tensor:
        """One caption → ``(L,)`` or ``(2, L)``; a list adds a leading axis (padded together)."""
        if isinstance(caption, str):
            return self._one(caption)
        if isinstance(caption, Sequence) and all(isinstance(c, str) for c in caption):
            samples = [self._one(c) for c in caption]
            collate = self.collate()
            return collate(samples) if collate is not None else torch.stack(samples)
        raise DataError(
            f"a caption must be a str (or a list of str), got {type(caption).__name__}",
            hint="declare the text modality with dtype 'str' only when samples are strings",
        )

    def _one(self, caption: str) -> Tensor:
        tok = self.tokenizer
        pad: str | bool = "max_length" if self.padding == "max_length" else False
        enc = tok(caption, truncation=True, max_length=self.max_length, padding=pad)
        mask = enc.get("attention_mask")
        kept = sum(mask) if mask is not None else len(enc["input_ids"])
        if kept >= self.max_length:  # it may have been cut: count its full length
            full = self.count_tokens(caption)
            if full > self.max_length:
                self._note_truncation(caption, full)
        ids = torch.tensor(enc["input_ids"], dtype=torch.long)
        if not self.with_mask:
            return ids
        if mask is None:
            mask = [1] * len(enc["input_ids"])
        return torch.stack([ids, torch.tensor(mask, dtype=torch.long)])

    def count_tokens(self, caption: str) -> int:
        """Tokens of ``caption`` untruncated, special tokens included. ``verbose=False``: a
        caption longer than the tokenizer's ``model_max_length`` would otherwise make
        transformers warn about indexing errors that truncation prevents."""
        return len(self.tokenizer(caption, truncation=False, verbose=False)["input_ids"])

    def _note_truncation(self, caption: str, length: int) -> None:
        self.truncated += 1
        if not self._warned:
            self._warned = True
            shown = caption if len(caption) <= 60 else caption[:57] + "..."
            warnings.warn(
                f"caption {shown!r} has {length} tokens, more than max_length={self.max_length}: "
                "it was cut to that many tokens and the encoder does not see its end; further "
                "truncations are counted in the tokenizer's `truncated` attribute, "
                "not warned",
                UserWarning,
                stacklevel=4,
            )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_tok"] = None
        return state

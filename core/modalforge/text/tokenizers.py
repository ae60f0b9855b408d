"""Caption tokenizers for text towers and generators: ``str`` → ``LongTensor (context_length,)``.

Each puts a start token first and an end-of-text token (EOT) last, and pads with 0, as open_clip's
``tokenize`` does; EOT has the largest id, so the tower pools the EOT position with ``argmax``.

- :class:`ByteTokenizer` needs no files: UTF-8 bytes are ids 0–255, start 256, EOT 257 (vocab
  258), for training from scratch.
- :class:`HashedWordTokenizer` needs no files either: each word is hashed (CRC-32) into a fixed
  vocabulary, as scikit-learn's ``HashingVectorizer`` does, for bag-of-words encoders whose
  features should add up over the words of a sentence.
- :class:`ClipBpeTokenizer`: CLIP's byte-pair encoding through transformers' CLIP tokenizer,
  loaded from a local folder (``vocab.json`` + ``merges.txt``, or ``tokenizer.json``).

Captions are cleaned first (HTML entities unescaped, control characters dropped, runs of
whitespace made one space, lowercased). An empty caption encodes to ``[start, EOT]``. Captions
longer than the context are cut to ``context_length`` tokens, the last one replaced by EOT; each
tokenizer counts them in ``truncated`` and warns at the first one. Instances are picklable
(data-loader workers); the transformers tokenizer is loaded again in each process.
"""

from __future__ import annotations

import html
import re
import unicodedata
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from modalforge.deps import require
from modalforge.errors import DataError, SpecError

BYTE_VOCAB_SIZE = 258  # 256 bytes + start + end of text
_WORD = re.compile(r"\w+")


def clean_caption(text: str) -> str:
    """HTML-unescaped, control characters removed, whitespace collapsed, lowercased."""
    text = html.unescape(html.unescape(text))
    text = "".join(
        " " if ch.isspace() else ch for ch in text if ch.isspace() or not _is_control(ch)
    )
    return " ".join(text.split()).lower()


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn")


class CaptionTokenizer:
    """Common framing: clean, encode, add start/EOT, truncate (counted), pad to the context."""

    sot: int
    eot: int

    def __init__(self, context_length: int) -> None:
        if context_length < 2:
            raise ValueError(
                f"context_length must be at least 2 (start and end), got {context_length}"
            )
        self.context_length = context_length
        self.truncated = 0
        self._warned = False

    def encode(self, text: str) -> list[int]:
        """Token ids of a cleaned caption, without start and end tokens."""
        raise NotImplementedError

    def __call__(self, caption: str | Sequence[str]) -> Tensor:
        """One caption → ``(context_length,)``; a list of captions → ``(N, context_length)``."""
        if isinstance(caption, str):
            return self._one(caption)
        if isinstance(caption, Sequence) and all(isinstance(c, str) for c in caption):
            return torch.stack([self._one(c) for c in caption]) if caption else self._empty()
        raise DataError(
            f"a caption must be a str (or a list of str), got {type(caption).__name__}",
            hint="declare the text modality with dtype 'str' only when samples are strings; "
            "pre-tokenised ids are used as they are",
        )

    def _empty(self) -> Tensor:
        return torch.zeros(0, self.context_length, dtype=torch.long)

    def _one(self, caption: str) -> Tensor:
        ids = [self.sot, *self.encode(clean_caption(caption)), self.eot]
        if len(ids) > self.context_length:
            ids = ids[: self.context_length]
            ids[-1] = self.eot
            self._note_truncation(caption)
        out = torch.zeros(self.context_length, dtype=torch.long)
        out[: len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out

    def _note_truncation(self, caption: str) -> None:
        self.truncated += 1
        if not self._warned:
            self._warned = True
            shown = caption if len(caption) <= 60 else caption[:57] + "..."
            warnings.warn(
                f"{type(self).__name__}: caption {shown!r} is longer than context_length="
                f"{self.context_length} tokens and was truncated (end-of-text kept); further "
                "truncations are counted in the tokenizer's `truncated` attribute, not warned",
                UserWarning,
                stacklevel=4,
            )


class ByteTokenizer(CaptionTokenizer):
    """UTF-8 bytes as tokens: ids 0–255, start 256, end of text 257. Needs no files."""

    sot = 256
    eot = 257
    vocab_size = BYTE_VOCAB_SIZE

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))


class HashedWordTokenizer(CaptionTokenizer):
    """Words (runs of letters and digits) hashed into ``vocab_size`` ids: 0 pads, words take
    ``1 … vocab_size - 3``, start is ``vocab_size - 2`` and end of text ``vocab_size - 1``.
    Stable across processes and runs (CRC-32, not Python's salted ``hash``); two words share an
    id only by a hash collision, rare when the vocabulary is much larger than the words used."""

    def __init__(self, vocab_size: int, context_length: int) -> None:
        super().__init__(context_length)
        if vocab_size < 4:
            raise ValueError(
                f"vocab_size must be at least 4 (pad, a word, start, end), got {vocab_size}"
            )
        self.vocab_size = int(vocab_size)
        self.sot, self.eot = self.vocab_size - 2, self.vocab_size - 1

    def encode(self, text: str) -> list[int]:
        buckets = self.vocab_size - 3
        return [1 + zlib.crc32(w.encode("utf-8")) % buckets for w in _WORD.findall(text)]


class ClipBpeTokenizer(CaptionTokenizer):
    """CLIP's BPE (transformers' ``CLIPTokenizerFast``) from the local folder ``tokenizer_dir``."""

    def __init__(self, tokenizer_dir: str, context_length: int) -> None:
        super().__init__(context_length)
        self.tokenizer_dir = str(tokenizer_dir)
        self._tok: Any = None
        tok = self.tokenizer
        self.sot = int(tok.bos_token_id)
        self.eot = int(tok.eos_token_id)
        self.vocab_size = len(tok)

    @property
    def tokenizer(self) -> Any:
        if self._tok is None:
            self._tok = load_clip_bpe(self.tokenizer_dir)
        return self._tok

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_tok"] = None  # reloaded from tokenizer_dir in the worker
        return state


CLIP_BPE_FILES = (("vocab.json", "merges.txt"), ("tokenizer.json",))


def check_tokenizer_dir(tokenizer_dir: str | None, field: str) -> Path:
    """The folder, or a :class:`SpecError` naming the missing folder or file."""
    if tokenizer_dir is None:
        raise SpecError(
            field,
            "tokenizer 'clip_bpe' needs a local folder with CLIP's vocab.json and merges.txt",
            hint="set tokenizer_dir, or use tokenizer: bytes to train without tokenizer files",
        )
    path = Path(tokenizer_dir)
    if not path.is_dir():
        raise SpecError(
            field,
            f"tokenizer folder {tokenizer_dir} does not exist",
            hint="give a folder with vocab.json and merges.txt (e.g. from a saved CLIP model)",
        )
    for files in CLIP_BPE_FILES:
        if all((path / f).is_file() for f in files):
            return path
    missing = [f for f in CLIP_BPE_FILES[0] if not (path / f).is_file()]
    raise SpecError(
        field,
        f"tokenizer folder {tokenizer_dir} lacks {' and '.join(missing)}",
        hint="copy vocab.json and merges.txt (or tokenizer.json) of a CLIP tokenizer into it",
    )


def load_clip_bpe(tokenizer_dir: str) -> Any:
    """transformers' fast CLIP tokenizer from a local folder; never downloads."""
    transformers = require("transformers")
    cls = getattr(transformers, "CLIPTokenizerFast", None) or transformers.CLIPTokenizer
    return cls.from_pretrained(tokenizer_dir, local_files_only=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def build_tokenizer(
    kind: str,
    *,
    context_length: int,
    vocab_size: int,
    tokenizer_dir: str | None,
    field: str,
) -> CaptionTokenizer:
    """The tokenizer ``kind`` for a tower of ``vocab_size``; errors name the params under
    ``field``."""
    if kind == "bytes":
        if vocab_size < BYTE_VOCAB_SIZE:
            raise SpecError(
                f"{field}.vocab_size",
                f"the byte tokenizer uses {BYTE_VOCAB_SIZE} token ids (256 bytes, start, end), "
                f"but vocab_size is {vocab_size}",
                hint=f"set vocab_size: {BYTE_VOCAB_SIZE} (or more)",
            )
        return ByteTokenizer(context_length)
    check_tokenizer_dir(tokenizer_dir, f"{field}.tokenizer_dir")
    try:
        tok = ClipBpeTokenizer(str(tokenizer_dir), context_length)
    except Exception as exc:  # noqa: BLE001 - tokenizers raises a bare Exception for bad files
        raise SpecError(
            f"{field}.tokenizer_dir",
            f"cannot load a CLIP tokenizer from {tokenizer_dir}: {_first_line(exc)}",
            hint="the folder must hold a CLIP tokenizer's vocab.json and merges.txt",
        ) from exc
    if tok.vocab_size > vocab_size:
        raise SpecError(
            f"{field}.vocab_size",
            f"the tokenizer in {tokenizer_dir} has {tok.vocab_size} tokens, more than "
            f"vocab_size={vocab_size}",
            hint=f"set vocab_size: {tok.vocab_size}",
        )
    if tok.eot != tok.vocab_size - 1:
        raise SpecError(
            f"{field}.tokenizer_dir",
            f"the end-of-text token of {tokenizer_dir} has id {tok.eot}, not the largest id "
            f"({tok.vocab_size - 1}); the tower pools the largest id (argmax), as CLIP does",
            hint="use a CLIP tokenizer whose <|endoftext|> token is the last in vocab.json",
        )
    return tok

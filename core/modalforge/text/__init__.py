"""Text utilities shared by text encoders and text-conditioned generators: caption tokenizers."""

from modalforge.text.tokenizers import (
    BYTE_VOCAB_SIZE,
    ByteTokenizer,
    CaptionTokenizer,
    ClipBpeTokenizer,
    build_tokenizer,
    clean_caption,
)

__all__ = [
    "BYTE_VOCAB_SIZE",
    "ByteTokenizer",
    "CaptionTokenizer",
    "ClipBpeTokenizer",
    "build_tokenizer",
    "clean_caption",
]

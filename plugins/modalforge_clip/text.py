"""``clip_text``: OpenAI CLIP's text tower, built in, with its tokenizer and weight loading."""

from __future__ import annotations

import contextlib
from typing import Any, Literal

import torch
from torch import Tensor, nn

from modalforge.contracts import Encoder, FeatureSpec
from modalforge.errors import SpecError
from modalforge.modality import Modality, ModalityKind
from modalforge.text.tokenizers import CaptionTokenizer, build_tokenizer
from modalforge_clip.convert import load_text_tower
from modalforge_clip.tower import LayerNorm, QuickGELU, Transformer


class ClipTextEncoder(Encoder):
    """CLIP's text transformer: token + positional embedding, causal pre-LN blocks, ``ln_final``,
    the end-of-text token's features (the largest token id, ``argmax``), ``text_projection``.

    The architecture and parameter names are open_clip's ``TextTransformer``, so OpenAI and
    open_clip weights load directly from ``weights_file`` (see :mod:`modalforge_clip.convert`);
    OpenAI's weights were trained with ``act: quick_gelu``. Reads captions (``str``, tokenised by
    ``preprocess()``) or token ids ``(B, L)`` with ``L <= context_length``. ``tokenizer: bytes``
    needs no files (train from scratch, ``vocab_size >= 258``); ``clip_bpe`` is CLIP's BPE from
    ``tokenizer_dir``. ``freeze`` locks the tower (LiT); ``grad_checkpointing`` saves memory.
    """

    accepts = (ModalityKind.TEXT,)

    def __init__(
        self,
        modality: Modality,
        context_length: int = 77,
        vocab_size: int = 49408,
        width: int = 512,
        heads: int = 8,
        layers: int = 12,
        embed_dim: int = 512,
        mlp_ratio: float = 4.0,
        act: Literal["gelu", "quick_gelu"] = "gelu",
        tokenizer: Literal["bytes", "clip_bpe"] = "bytes",
        tokenizer_dir: str | None = None,
        weights_file: str | None = None,
        grad_checkpointing: bool = False,
        freeze: bool = False,
    ) -> None:
        super().__init__(modality)
        field = f"model.encoders.{modality.name}.params"
        _check_sizes(
            field,
            context_length=context_length,
            vocab_size=vocab_size,
            width=width,
            heads=heads,
            layers=layers,
            embed_dim=embed_dim,
        )
        length = modality.shape[0]
        if not modality.is_raw and length is not None and length > context_length:
            raise SpecError(
                f"{field}.context_length",
                f"modality {modality.describe()} has {length} tokens, more than "
                f"context_length={context_length}",
                hint=f"set context_length: {length}, or tokenise the data to {context_length}",
            )
        self.tokenizer: CaptionTokenizer = build_tokenizer(
            tokenizer,
            context_length=context_length,
            vocab_size=vocab_size,
            tokenizer_dir=tokenizer_dir,
            field=field,
        )
        self.context_length = context_length
        self.vocab_size = vocab_size
        self.freeze = freeze
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, width))
        act_layer = QuickGELU if act == "quick_gelu" else nn.GELU
        self.transformer = Transformer(width, layers, heads, mlp_ratio, act_layer)
        self.ln_final = LayerNorm(width)
        self.text_projection = nn.Parameter(torch.empty(width, embed_dim))
        self.init_parameters()
        if weights_file is not None:
            load_text_tower(self, weights_file, f"{field}.weights_file")
        self.transformer.grad_checkpointing = grad_checkpointing
        if freeze:
            self.requires_grad_(False)
        self._output = FeatureSpec(embed_dim, tokens=True)

    def init_parameters(self) -> None:
        """open_clip's initialisation of the text tower."""
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        self.transformer.init_parameters()
        nn.init.normal_(self.text_projection, std=self.transformer.width**-0.5)

    @property
    def output(self) -> FeatureSpec:
        return self._output

    def _tower(self) -> contextlib.AbstractContextManager[Any]:
        return torch.no_grad() if self.freeze else contextlib.nullcontext()

    def _hidden(self, text: Tensor) -> Tensor:
        """``ln_final`` of the transformer's output, ``(B, L, width)``."""
        text = text.long()
        if text.shape[-1] > self.context_length:
            raise ValueError(
                f"token ids of length {text.shape[-1]} exceed context_length={self.context_length}"
            )
        x = self.token_embedding(text) + self.positional_embedding[: text.shape[-1]]
        return self.ln_final(self.transformer(x))

    def forward(self, x: Tensor) -> Tensor:
        """Token ids ``(B, L)`` → projected end-of-text features ``(B, embed_dim)``."""
        with self._tower():
            hidden = self._hidden(x)
            eot = hidden[torch.arange(hidden.shape[0], device=hidden.device), x.long().argmax(-1)]
            return eot @ self.text_projection

    def forward_tokens(self, x: Tensor) -> Tensor:
        """Every position's features, projected: ``(B, L, embed_dim)``."""
        with self._tower():
            return self._hidden(x) @ self.text_projection

    def encode_text(self, text: Tensor | str | list[str]) -> Tensor:
        """Unnormalised embeddings of token ids or captions (tokenised here)."""
        ids = self.tokenizer(text) if isinstance(text, (str, list)) else text
        if ids.ndim == 1:
            ids = ids.unsqueeze(0)
        return self(ids.to(self.positional_embedding.device))

    def preprocess(self) -> CaptionTokenizer:
        """The tokenizer: caption ``str`` → ``LongTensor (context_length,)`` (picklable)."""
        return self.tokenizer


def _check_sizes(field: str, **sizes: int) -> None:
    for name, value in sizes.items():
        if value <= 0:
            raise SpecError(f"{field}.{name}", f"must be positive, got {value}")
    if sizes["context_length"] < 2:
        raise SpecError(f"{field}.context_length", "needs room for the start and end tokens (>= 2)")
    if sizes["width"] % sizes["heads"]:
        raise SpecError(
            f"{field}.heads",
            f"width {sizes['width']} is not divisible by heads {sizes['heads']}",
            hint="CLIP uses heads = width // 64",
        )

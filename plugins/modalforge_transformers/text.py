"""``hf_text``: any transformers text model saved in a local folder, with its own tokenizer."""

from __future__ import annotations

import contextlib
import json
from collections import OrderedDict
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from modalforge.contracts import Encoder, FeatureSpec
from modalforge.errors import SpecError
from modalforge.modality import Modality, ModalityKind
from modalforge_transformers.local import check_model_dir, load_model, model_type
from modalforge_transformers.tokenize import HFTokenize, PadCollate, Padding

# Dual-encoder folders have their own encoders, which return the projected embeddings.
DUAL_MODELS = {"clip": "hf_clip_text", "siglip": "hf_siglip_text"}


class HFTextEncoder(Encoder):
    """A transformers text model (``AutoModel``) from ``model_dir``, pooled to one vector.

    ``preprocess()`` tokenises a caption with the folder's own tokenizer into a
    ``LongTensor (2, L)``: row 0 ``input_ids``, row 1 ``attention_mask``; :meth:`collate` pads a
    batch to its longest caption, ``(B, 2, L_max)`` (``padding: max_length`` pads every caption to
    ``max_length`` instead: fixed shapes, slower on short captions). ``max_length`` defaults to
    the folder's own limit: ``sentence_bert_config.json``'s ``max_seq_length`` (sentence-
    transformers folders), else the tokenizer's ``model_max_length``, else the model's
    ``max_position_embeddings``. :meth:`forward` also takes
    pre-tokenised ``input_ids (B, L)``; the mask is then ``input_ids != pad_token_id``.
    ``pooling``: ``mean`` over unmasked tokens (sentence-transformers style), ``cls`` the first
    token, ``eos`` the last unmasked token (decoder-style models). Encoder-decoder models use
    their encoder. ``proj_dim`` adds a trainable linear projection; ``freeze`` locks the model.

    ``cache_size`` (frozen models only) keeps the pooled features of up to that many distinct
    texts: a robot's instruction repeats at every step of an episode, so a frozen sentence
    encoder runs once per distinct instruction instead of once per sample (least recently used
    texts are dropped first). The projection after it still trains.
    """

    accepts = (ModalityKind.TEXT,)

    def __init__(
        self,
        modality: Modality,
        model_dir: str,
        pooling: Literal["mean", "cls", "eos"] = "mean",
        max_length: int | None = None,
        padding: Padding = "longest",
        proj_dim: int | None = None,
        freeze: bool = False,
        grad_checkpointing: bool = False,
        cache_size: int = 0,
    ) -> None:
        super().__init__(modality)
        field = f"model.encoders.{modality.name}.params"
        if cache_size < 0 or (cache_size and not freeze):
            raise SpecError(
                f"{field}.cache_size",
                f"caches the features of a frozen model only (freeze: {freeze}, "
                f"cache_size: {cache_size})",
                hint="set freeze: true to cache, or cache_size: 0",
            )
        self.cache_size = int(cache_size)
        self._cache: OrderedDict[bytes, Tensor] = OrderedDict()
        path = check_model_dir(model_dir, f"{field}.model_dir")
        kind = model_type(path)
        if kind in DUAL_MODELS:
            raise SpecError(
                f"{field}.model_dir",
                f"{model_dir} holds a {kind!r} dual encoder, whose text embeddings need its "
                "projection",
                hint=f"use the encoder {DUAL_MODELS[kind]!r} for it",
            )
        if proj_dim is not None and proj_dim <= 0:
            raise SpecError(f"{field}.proj_dim", f"must be positive, got {proj_dim}")
        model = load_model(path, f"{field}.model_dir")
        if getattr(model.config, "is_encoder_decoder", False):
            model = model.get_encoder()
        limit = getattr(model.config, "max_position_embeddings", None)
        if max_length is None:
            max_length = folder_max_length(path, limit, f"{field}.max_length")
        if max_length < 2 or (limit is not None and max_length > limit):
            raise SpecError(
                f"{field}.max_length",
                f"must be from 2 to the model's max_position_embeddings ({limit}), "
                f"got {max_length}",
                hint="leave max_length unset to use the model folder's own limit",
            )
        if grad_checkpointing:
            if not getattr(model, "supports_gradient_checkpointing", False):
                raise SpecError(
                    f"{field}.grad_checkpointing",
                    f"{type(model).__name__} does not support gradient checkpointing",
                    hint="set grad_checkpointing: false",
                )
            _enable_checkpointing(model)
        self.model = model
        self.pooling = pooling
        self.freeze = freeze
        self.max_length = max_length
        self.tokenize = HFTokenize(
            path, max_length, with_mask=True, field=f"{field}.model_dir", padding=padding
        )
        if modality.is_raw:  # captions need the tokenizer: fail now, not in a loader worker
            _ = self.tokenize.tokenizer
        self.pad_token_id = _pad_id(model.config, self.tokenize, modality.is_raw)
        if freeze:
            self.model.requires_grad_(False)
        hidden = int(model.config.hidden_size)
        self.proj: nn.Module = nn.Identity() if proj_dim is None else nn.Linear(hidden, proj_dim)
        self._output = FeatureSpec(proj_dim or hidden, tokens=True)

    @property
    def output(self) -> FeatureSpec:
        return self._output

    def train(self, mode: bool = True) -> HFTextEncoder:
        """A frozen model stays in eval mode (no dropout)."""
        super().train(mode)
        if self.freeze:
            self.model.eval()
        return self

    def _ids_and_mask(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = x.long()
        if x.ndim == 3:  # (B, 2, L) from preprocess()
            return x[:, 0], x[:, 1]
        if self.pad_token_id is None:
            return x, torch.ones_like(x)
        return x, (x != self.pad_token_id).long()

    def _hidden(self, x: Tensor) -> tuple[Tensor, Tensor]:
        ids, mask = self._ids_and_mask(x)
        with torch.no_grad() if self.freeze else contextlib.nullcontext():
            out = self.model(input_ids=ids, attention_mask=mask)
        return out.last_hidden_state, mask

    def forward(self, x: Tensor) -> Tensor:
        """``(B, 2, L)`` ids + mask (or ids ``(B, L)``) → pooled features ``(B, dim)``."""
        if self.cache_size:
            return self.proj(self._cached_pool(x))
        return self.proj(self._pool(x))

    def _cached_pool(self, x: Tensor) -> Tensor:
        """:meth:`_pool` of each row, computed once per distinct text (its unmasked ids, so the
        same text padded to another batch's length is the same entry)."""
        ids, mask = self._ids_and_mask(x)
        ids, mask = ids.cpu(), mask.cpu().bool()
        keys = [ids[i][mask[i]].numpy().tobytes() for i in range(ids.shape[0])]
        missing = [k for k in dict.fromkeys(keys) if k not in self._cache]
        if missing:
            fresh = self._pool(x[[keys.index(k) for k in missing]])
            for key, value in zip(missing, fresh, strict=True):
                self._cache[key] = value.detach()
        out = torch.stack([self._cache[k] for k in keys]).to(x.device)
        for key in dict.fromkeys(keys):
            self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out

    def _pool(self, x: Tensor) -> Tensor:
        hidden, mask = self._hidden(x)
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        elif self.pooling == "eos":
            last = (mask.sum(dim=1) - 1).clamp_min(0)
            pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        else:
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1e-9)
        return pooled

    def forward_tokens(self, x: Tensor) -> Tensor:
        """The model's last hidden states ``(B, L, dim)`` (padding positions included)."""
        hidden, _ = self._hidden(x)
        return self.proj(hidden)

    def preprocess(self) -> HFTokenize:
        """Caption → ``LongTensor (2, L)`` (``input_ids``, ``attention_mask``), ``L`` the
        caption's own length (at most ``max_length``), or ``max_length`` with max-length padding."""
        return self.tokenize

    def collate(self) -> PadCollate | None:
        """Pads a batch of :meth:`preprocess` outputs to its longest caption (``None`` with
        ``padding: max_length``, whose samples already have one length)."""
        return self.tokenize.collate()


def folder_max_length(path: Path, limit: int | None, field: str = "max_length") -> int:
    """The longest input the folder's model was trained or configured for: sentence-transformers'
    ``max_seq_length`` (``sentence_bert_config.json``), else the tokenizer's ``model_max_length``
    when it is a real value (transformers stores 1e30 for "unset"), else ``limit`` (the model's
    ``max_position_embeddings``); never more than ``limit``."""
    candidates = (
        (path / "sentence_bert_config.json", "max_seq_length"),
        (path / "tokenizer_config.json", "model_max_length"),
    )
    for file, key in candidates:
        value = _json_int(file, key)
        if value is not None and 2 <= value <= 1_000_000:
            return min(value, limit) if limit is not None else value
    if limit is None:
        raise SpecError(
            field,
            f"{path} states no maximum sequence length (no max_seq_length, model_max_length or "
            "max_position_embeddings)",
            hint="set the encoder's max_length",
        )
    return int(limit)


def _json_int(file: Path, key: str) -> int | None:
    try:
        value = json.loads(file.read_text(encoding="utf-8")).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _enable_checkpointing(model: Any) -> None:
    """Non-reentrant activation checkpointing (the method was renamed in transformers 5)."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def _pad_id(config: Any, tokenize: HFTokenize, have_tokenizer: bool) -> int | None:
    pad = getattr(config, "pad_token_id", None)
    if pad is None and have_tokenizer:
        pad = tokenize.tokenizer.pad_token_id
    return None if pad is None else int(pad)

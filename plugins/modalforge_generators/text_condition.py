"""The text condition of the GAN and the diffusion model: which modalities they read, the
condition encoder (trained jointly, frozen, or initialised from a CLIP run's checkpoint), caption
token dropout, and prompts checked and tokenized for sampling."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from modalforge.contracts import Encoder
from modalforge.errors import CheckpointError, SpecError
from modalforge.modality import Modality, ModalityKind
from modalforge.text.tokenizers import CaptionTokenizer, clean_caption
from modalforge_generators.sampling import SamplingError

PARAMS = "model.generator.params"
IMAGE_KINDS = (ModalityKind.IMAGE2D, ModalityKind.DEPTH)


class TextConditioned(nn.Module):
    """A generator conditioned on a text embedding from a registered text encoder it owns.

    :meth:`setup_text_condition` picks the caption modality, takes the encoder given under
    ``model.encoders.<modality>`` (checkpointed with the generator as ``encoders.<modality>.*``),
    optionally loads it from a CLIP run (``condition_checkpoint``) and freezes it
    (``freeze_condition``: no gradients, always in eval mode). ``token_dropout`` deletes random
    caption tokens of training batches (:func:`drop_tokens`), so that a text encoder learned
    from a few templates still understands prompts that differ slightly from them.
    """

    text_key: str
    freeze_condition: bool
    token_dropout: float

    def setup_text_condition(
        self,
        modalities: Mapping[str, Modality],
        encoders: Mapping[str, Encoder] | None,
        condition: str | None,
        *,
        condition_checkpoint: str | None,
        freeze_condition: bool,
        token_dropout: float,
        who: str,
    ) -> Modality:
        """Set up the condition (see the class docstring); returns the caption modality."""
        if not 0.0 <= token_dropout < 1.0:
            raise SpecError(f"{PARAMS}.token_dropout", f"must be in [0, 1), got {token_dropout}")
        text = pick_modality(modalities, condition, (ModalityKind.TEXT,), "condition", "text")
        enc = condition_encoder(encoders or {}, text, who)
        if condition_checkpoint is not None:
            load_condition_weights(enc, text.name, condition_checkpoint)
        tok = enc.preprocess()
        if token_dropout > 0 and not isinstance(tok, CaptionTokenizer):
            raise SpecError(
                f"{PARAMS}.token_dropout",
                f"needs a caption tokenizer with start/end tokens; encoder "
                f"{type(enc).__name__} has {type(tok).__name__}",
                hint="set token_dropout: 0, or use a text encoder such as clip_text",
            )
        self._frame = (tok.sot, tok.eot) if isinstance(tok, CaptionTokenizer) else None
        self.text_key = text.name
        self.freeze_condition = freeze_condition
        self.token_dropout = token_dropout
        self.encoders = nn.ModuleDict({text.name: enc})
        if freeze_condition:
            enc.requires_grad_(False)
            enc.eval()
        return text

    @property
    def condition_encoder(self) -> Encoder:
        return self.encoders[self.text_key]

    def train(self, mode: bool = True) -> Any:  # noqa: ANN401
        """As ``nn.Module.train``; a frozen condition encoder stays in eval mode."""
        super().train(mode)
        if self.freeze_condition:
            self.condition_encoder.eval()
        return self

    def training_tokens(self, tokens: Tensor) -> Tensor:
        """A training batch's caption tokens, with ``token_dropout`` applied."""
        if self.token_dropout > 0 and self._frame is not None:
            return drop_tokens(tokens, self.token_dropout, *self._frame)
        return tokens

    def embed_text(self, tokens: Tensor) -> Tensor:
        """Text embeddings ``(B, D)``; without autograd when the encoder is frozen."""
        ctx = torch.no_grad() if self.freeze_condition else contextlib.nullcontext()
        with ctx:
            return self.condition_encoder(tokens)

    def embed_prompts(self, prompts: Sequence[str], device: torch.device) -> Tensor:
        """Embeddings ``(P, D)`` of checked prompts (:func:`tokenize_prompts`)."""
        tokens = tokenize_prompts(self.condition_encoder, prompts)
        return self.condition_encoder(tokens.to(device))


def pick_modality(
    modalities: Mapping[str, Modality],
    name: str | None,
    kinds: tuple[ModalityKind, ...],
    param: str,
    what: str,
) -> Modality:
    """``modalities[name]``, or the only modality of one of ``kinds``; a SpecError otherwise."""
    field = f"{PARAMS}.{param}"
    if name is not None:
        if name not in modalities:
            raise SpecError(
                field,
                f"the data set has no modality {name!r}",
                hint=f"use one of: {', '.join(modalities) or 'none'}",
            )
        mod = modalities[name]
        if mod.kind not in kinds:
            raise SpecError(
                field,
                f"modality {mod.describe()} is not {what}",
                hint=f"name a modality of kind {' or '.join(k.value for k in kinds)}",
            )
        return mod
    found = [m for m in modalities.values() if m.kind in kinds]
    if len(found) != 1:
        have = ", ".join(m.describe() for m in modalities.values()) or "none"
        raise SpecError(
            field,
            f"cannot tell which modality is the {what}: the data set has {len(found)} ({have})",
            hint=f"set {field} to the modality's name",
        )
    return found[0]


def fixed_size_image(modalities: Mapping[str, Modality], name: str | None) -> Modality:
    """The image modality to generate (``name``, or the only one), which must have a fixed size."""
    img = pick_modality(modalities, name, IMAGE_KINDS, "image", "an image")
    if any(s is None for s in img.shape):
        raise SpecError(
            f"{PARAMS}.image",
            f"image modality {img.describe()} has no fixed size",
            hint="use a data set with a fixed image size (e.g. image_size: 8)",
        )
    return img


def condition_encoder(
    encoders: Mapping[str, Encoder], modality: Modality, who: str = "the generator"
) -> Encoder:
    """The encoder under ``model.encoders.<modality>``, or a SpecError saying how to add one."""
    if modality.name not in encoders:
        raise SpecError(
            f"model.encoders.{modality.name}",
            f"{who} needs a text encoder for its condition {modality.name!r}",
            hint=f"add e.g. `model.encoders.{modality.name}: {{name: clip_text, params: "
            "{context_length: 48, vocab_size: 258, width: 64, heads: 4, layers: 2, "
            "embed_dim: 64}}`",
        )
    return encoders[modality.name]


def load_condition_weights(encoder: nn.Module, modality: str, path: str) -> Path:
    """Copy ``encoders.<modality>.*`` of a modalforge checkpoint into ``encoder`` (exact keys).

    ``path`` is a run folder, its ``checkpoints`` folder or a step folder of a pipeline with an
    encoder for ``modality`` (e.g. a CLIP run); returns the step folder read.
    """
    import safetensors.torch

    from modalforge.engine.checkpoint_files import (
        MODEL_FILE,
        read_state,
        resolve_checkpoint,
        verify_file,
    )

    field = f"{PARAMS}.condition_checkpoint"
    hint = (
        f"point it to the run folder of a contrastive (CLIP) pipeline whose text encoder "
        f"`model.encoders.{modality}` has the same name and params as here"
    )
    try:
        folder = resolve_checkpoint(path)
        state = read_state(folder)
        verify_file(folder / MODEL_FILE, state)
        weights = safetensors.torch.load_file(str(folder / MODEL_FILE), device="cpu")
    except CheckpointError as exc:
        raise SpecError(field, exc.message, hint=hint) from None
    prefix = f"encoders.{modality}."
    found = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
    expected = encoder.state_dict()
    if not found:
        raise SpecError(
            field,
            f"{folder / MODEL_FILE} holds no weights under {prefix!r} (is it a pipeline with a "
            f"{modality!r} encoder?)",
            hint=hint,
        )
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    mismatched = sorted(
        k for k in set(found) & set(expected) if found[k].shape != expected[k].shape
    )
    if missing or unexpected or mismatched:
        parts = []
        for label, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("shape-mismatched", mismatched),
        ):
            if keys:
                shown = ", ".join(prefix + k for k in keys[:5])
                more = f" (+{len(keys) - 5} more)" if len(keys) > 5 else ""
                parts.append(f"{len(keys)} {label} key(s): {shown}{more}")
        raise SpecError(
            field,
            f"{folder / MODEL_FILE} does not fit this text encoder: " + "; ".join(parts),
            hint=hint,
        )
    encoder.load_state_dict(found, strict=True)
    return folder


def check_prompts(condition: object, num_samples: int) -> list[str]:
    """The prompts as a list, or a :class:`SamplingError` (a ``ValueError``) saying what's wrong."""
    if isinstance(condition, str):
        raise SamplingError(
            "sample() takes a sequence of prompts, got one str",
            hint=f"pass [{condition[:40]!r}]",
        )
    if not isinstance(condition, Sequence) or not condition:
        raise SamplingError(
            "sample() needs at least one prompt",
            hint='pass a list of prompt strings, e.g. ["a handwritten seven"]',
        )
    for i, p in enumerate(condition):
        if not isinstance(p, str):
            raise SamplingError(f"prompt {i} is a {type(p).__name__}, not a str")
        if not p.strip():
            raise SamplingError(f"prompt {i} is empty", hint="describe the image to generate")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise SamplingError(
            f"num_samples must be a positive integer, got {num_samples!r}",
            hint="ask for at least one sample per prompt",
        )
    return list(condition)


def tokenize_prompts(encoder: Encoder, prompts: Sequence[str]) -> Tensor:
    """``(P, L)`` token ids from the encoder's ``preprocess()``; an overlong prompt is an error
    here (training captions are truncated with a warning, a prompt silently cut is not what the
    user asked for)."""
    tok = encoder.preprocess()
    if tok is None:
        raise SamplingError(
            f"condition encoder {type(encoder).__name__} has no tokenizer (preprocess() is None)",
            hint="use a text encoder that tokenizes captions, e.g. clip_text",
        )
    if isinstance(tok, CaptionTokenizer):
        for i, prompt in enumerate(prompts):
            length = len(tok.encode(clean_caption(prompt))) + 2  # with start and end tokens
            if length > tok.context_length:
                raise SamplingError(
                    f"prompt {i} ({prompt[:40]!r}...) is {length} tokens long, more than the "
                    f"text encoder's context_length={tok.context_length}",
                    hint="shorten the prompt, or train with a larger context_length",
                )
    tokens = [torch.as_tensor(tok(p)) for p in prompts]
    collate = encoder.collate()
    return collate(tokens) if collate is not None else torch.stack(tokens)


def drop_tokens(tokens: Tensor, prob: float, sot: int, eot: int) -> Tensor:
    """Delete each caption token (not start/end) with probability ``prob``; the rest close up.

    ``tokens`` are ``(B, L)`` ids framed ``[sot, ..., eot, 0, 0, ...]``, as from
    :class:`~modalforge.text.CaptionTokenizer`. Training on captions with random deletions
    makes the text encoder robust to prompts that differ slightly from the training captions
    (a missing full stop, a typo). Draws from the default torch RNG.
    """
    if prob <= 0:
        return tokens
    special = (tokens == sot) | (tokens == eot) | (tokens == 0)
    keep = special | (torch.rand(tokens.shape, device=tokens.device) >= prob)
    keep &= tokens != 0  # padding is re-added at the end
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)
    out = tokens.gather(1, order)
    positions = torch.arange(tokens.shape[1], device=tokens.device)
    return torch.where(positions < keep.sum(dim=1, keepdim=True), out, torch.zeros_like(out))

"""Shared by ``zeroshot``, ``retrieve`` and ``embed``: load a trained model, embed a split.

The model is built from the spec and its weights are loaded from the checkpoint (the loss is not
needed); it runs on ``train.device`` with ``train.precision`` autocast, in eval mode, no grad.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import IterableDataset

from modalforge.contracts import TARGET_KEY
from modalforge.errors import DataError, ModalforgeError, SpecError
from modalforge.evaluation import is_contrastive
from modalforge.evaluation.encode import pick_image_text
from modalforge.pipeline import TrainedPipeline, load_trained

Loaded = TrainedPipeline  # the name the commands use


@dataclass
class EmbeddedSplit:
    """Embeddings ``(N, D)`` per modality (CPU, float32), with each sample's label and id."""

    embeds: dict[str, Tensor]
    labels: Tensor | None
    ids: list[Any] = field(default_factory=list)
    has_ids: bool = False  # the data set names its samples ("id"); else ids are positions

    def __len__(self) -> int:
        return len(self.ids)


def run_folder(checkpoint: Path) -> Path:
    """The run folder of a checkpoint path: the folder above ``checkpoints/`` if the path is
    inside one, else the path itself (a folder) or its parent (a file)."""
    parts = checkpoint.resolve().parts
    if "checkpoints" in parts:
        return Path(*parts[: len(parts) - 1 - parts[::-1].index("checkpoints")])
    return checkpoint if checkpoint.is_dir() else checkpoint.parent


def load_model(args: argparse.Namespace) -> Loaded:
    """Spec + overrides → pipeline; weights from ``args.checkpoint`` (checked before building)."""
    return load_trained(args.spec, args.checkpoint, list(args.overrides))


def require_encode(loaded: Loaded, command: str) -> nn.Module:
    """The model, if it embeds each modality on its own (``encode(modality, x)``)."""
    model = loaded.model
    if not is_contrastive(model):
        raise SpecError(
            "model.type",
            f"`modalforge {command}` needs a contrastive model, and this spec builds a "
            f"{type(model).__name__}",
            hint="use a spec with `model.type: contrastive` (image and text encoders)",
        )
    return model


def image_text_modalities(
    loaded: Loaded, image: str | None, text: str | None, command: str
) -> tuple[str, str]:
    """The (image, text) modality names: given, or the model's only text / only other one."""
    model = require_encode(loaded, command)
    mods = loaded.pipeline.dataset.modalities
    return pick_image_text({m: mods[m].kind for m in model.encoders}, image, text)


def check_split(loaded: Loaded, split: str | None) -> str:
    """``split`` or the spec's ``data.eval_split``, if the data set has it."""
    split = split or loaded.spec.data.eval_split
    splits = tuple(loaded.pipeline.dataset.splits)
    if split is None:
        raise ModalforgeError(
            "no split given and the spec has no data.eval_split",
            hint=f"pass --split (one of: {', '.join(splits)})",
        )
    if split not in splits:
        raise ModalforgeError(
            f"the data set has no split {split!r}", hint=f"use one of: {', '.join(splits)}"
        )
    return split


@torch.no_grad()
def embed_split(
    loaded: Loaded, split: str, modalities: list[str], encoder_features: bool = False
) -> EmbeddedSplit:
    """Embed ``modalities`` of every sample of ``split``, in order.

    A contrastive model gives its shared-space embeddings (``encode``), or with
    ``encoder_features`` its encoders' features before the projection (what the CLIP paper's
    linear probes read); any other model with per-modality ``encoders`` gives each encoder's
    pooled features.
    """
    from modalforge.engine.data import EpochLoader, loader_workers
    from modalforge.engine.runtime import prefetch_to_device

    spec = loaded.spec
    encode = _encode_fn(loaded.model, encoder_features)
    loader = EpochLoader(
        loaded.pipeline.load(split),
        batch_size=spec.data.eval_batch_size or spec.data.batch_size,
        shuffle=False,
        seed=spec.seed,
        num_workers=loader_workers(spec.data.num_workers, loaded.device),
        drop_last=False,
        pin_memory=loaded.device.type == "cuda",
        field=f"split {split!r}",
        collates=loaded.pipeline.collates,
    )
    chunks: dict[str, list[Tensor]] = {m: [] for m in modalities}
    labels: list[Tensor] = []
    ids: list[Any] = []
    has_ids = False
    for batch in prefetch_to_device(loader.epoch(0), loaded.device):
        n = 0
        for m in modalities:
            with loaded.precision.context():
                z = encode(m, batch)
            chunks[m].append(z.float().cpu())
            n = len(z)
        if TARGET_KEY in batch:
            labels.append(batch[TARGET_KEY].cpu())
        batch_ids = batch.get("id")
        has_ids = has_ids or batch_ids is not None
        ids.extend(_ids(batch_ids, n) if batch_ids is not None else range(len(ids), len(ids) + n))
    return EmbeddedSplit(
        {m: torch.cat(c) for m, c in chunks.items()},
        torch.cat(labels) if labels else None,
        ids,
        has_ids,
    )


def _encode_fn(model: nn.Module, encoder_features: bool = False) -> Any:
    """``(modality, batch) → (B, D)``: shared-space embeddings, or the encoder's pooled
    features (a conditioned encoder's with its conditions, from the same batch)."""
    if is_contrastive(model) and not encoder_features:
        return lambda m, batch: model.encode(m, batch[m])
    if hasattr(model, "pooled_features"):
        return model.pooled_features
    encoders = getattr(model, "encoders", None)
    if encoders is None:
        raise SpecError(
            "model",
            f"{type(model).__name__} has no per-modality encoders to embed with",
            hint="use a contrastive or supervised (encoders → fusion → head) spec",
        )
    return lambda m, batch: encoders[m](batch[m])


def _ids(value: Any, n: int) -> list[Any]:
    if isinstance(value, Tensor):
        return value.cpu().reshape(n, -1)[:, 0].tolist() if value.numel() else [None] * n
    return [v if isinstance(v, (str, int, float)) else str(v) for v in value]


def class_names_of(loaded: Loaded) -> tuple[str, ...]:
    target = loaded.pipeline.dataset.target
    return tuple(target.class_names) if target is not None else ()


def raw_samples(loaded: Loaded, split: str, modality: str) -> list[Any] | None:
    """The untransformed values of ``modality`` in ``split`` if they are raw (captions), else
    ``None``."""
    if not loaded.pipeline.dataset.modalities[modality].is_raw:
        return None
    data = indexable(loaded.pipeline.dataset.load(split), split)
    return [data[i][modality] for i in range(len(data))]


def indexable(data: Any, split: str) -> Any:
    """``data`` if samples can be read by index, else a :class:`DataError`."""
    if isinstance(data, IterableDataset) or not hasattr(data, "__len__"):
        raise DataError(
            f"split {split!r} is a stream (IterableDataset), so its samples cannot be indexed",
            hint="use a map-style data set (e.g. a manifest) for retrieval",
        )
    return data


def require_tokenizer(loaded: Loaded, text: str, command: str) -> None:
    """Free text can be embedded only by a text encoder that brings its tokenizer."""
    encoder = loaded.model.encoders[text]
    if encoder.preprocess() is None:
        raise SpecError(
            f"model.encoders.{text}",
            f"`modalforge {command}` embeds free text, but encoder {type(encoder).__name__} has "
            "no preprocess() (tokenizer) to turn strings into tokens",
            hint="use a text encoder that carries its tokenizer, e.g. clip_text",
        )


@torch.no_grad()
def embed_texts(loaded: Loaded, text: str, texts: list[str]) -> Tensor:
    """Embeddings ``(len(texts), D)`` (CPU, float32) of raw strings, in eval-sized batches."""
    from modalforge.evaluation import text_encoder

    encode = text_encoder(loaded.model, text)
    size = loaded.spec.data.eval_batch_size or loaded.spec.data.batch_size
    out = []
    for start in range(0, len(texts), size):
        with loaded.precision.context():
            out.append(encode(texts[start : start + size]).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, 0)

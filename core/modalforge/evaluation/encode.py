"""Embedding raw inputs (prompts, single samples) with a model's own preprocessing.

A contrastive model (:class:`modalforge.pipeline.ContrastiveModel`) has ``encoders`` keyed by
modality and ``encode(modality, x)``; each encoder carries its tokenizer / transform as
``preprocess()``. These helpers put the two together for callers that hold raw strings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside (Distributed)DataParallel wrappers."""
    while isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        model = model.module
    return model


def is_contrastive(model: nn.Module) -> bool:
    """Whether ``model`` (unwrapped) embeds each modality on its own: ``encode(modality, x)``."""
    from modalforge.pipeline.contrastive import ContrastiveModel

    return isinstance(unwrap_model(model), ContrastiveModel)


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter (or buffer); CPU for a model with neither."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def preprocess_batch(model: nn.Module, modality: str, samples: Sequence[object]) -> object:
    """Raw samples → the batch the modality's encoder expects, on the model's device.

    With the encoder's ``preprocess()`` each sample becomes a tensor and they are batched by the
    encoder's ``collate()`` (stacked without one); an encoder without preprocessing receives the
    raw samples as a list.
    """
    encoder = model.encoders[modality]
    preprocess = encoder.preprocess()
    if preprocess is None:
        return list(samples)
    tensors = [torch.as_tensor(preprocess(s)) for s in samples]
    collate = encoder.collate()
    return (collate(tensors) if collate is not None else torch.stack(tensors)).to(
        model_device(model)
    )


def text_encoder(model: nn.Module, modality: str = "text") -> Callable[[list[str]], Tensor]:
    """Prompts → embeddings ``(len(prompts), D)`` with the model's ``modality`` tower.

    Suits :func:`modalforge.evaluation.build_zeroshot_classifier`. Call it under
    ``torch.no_grad()`` (the classifier builder does).
    """
    model = unwrap_model(model)

    def encode(prompts: list[str]) -> Tensor:
        return model.encode(modality, preprocess_batch(model, modality, prompts))

    return encode


def pick_image_text(
    kinds: Mapping[str, object],
    image: str | None,
    text: str | None,
    *,
    model: str = "the model",
    image_option: str = "--image-modality",
    text_option: str = "--text-modality",
) -> tuple[str, str]:
    """The ``(image, text)`` modality names of a two-tower model: as given, else the only text
    modality among ``kinds`` (modality → :class:`~modalforge.modality.ModalityKind`) and the
    other one. Ambiguity or an unknown name is a user error naming the option to set."""
    from modalforge.errors import ModalforgeError
    from modalforge.modality import ModalityKind

    names = list(kinds)
    for given, option in ((image, image_option), (text, text_option)):
        if given is not None and given not in names:
            raise ModalforgeError(
                f"{option} {given!r} is not a modality of {model} ({', '.join(names)})",
                hint=f"pass one of: {', '.join(names)}",
            )
    if text is None:
        texts = [m for m in names if kinds[m] == ModalityKind.TEXT and m != image]
        if len(texts) != 1:
            raise ModalforgeError(
                f"cannot tell which modality of {model} is the text one among {', '.join(names)}",
                hint=f"name it with {text_option}",
            )
        text = texts[0]
    if image is None:
        others = [m for m in names if m != text]
        if len(others) != 1:
            raise ModalforgeError(
                f"cannot tell which modality of {model} to match with {text!r} among "
                f"{', '.join(others)}",
                hint=f"name it with {image_option}",
            )
        image = others[0]
    return image, text

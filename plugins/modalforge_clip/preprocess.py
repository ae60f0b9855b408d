"""Raw-sample transforms of the loaded CLIP towers: images for transformers and open_clip models,
captions for open_clip. All are picklable, so data-loader workers can run them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from modalforge.deps import require
from modalforge.errors import DataError


def _to_image(sample: object) -> Any:
    """A PIL image from a PIL image or an ``(H, W[, C])`` ``uint8`` array."""
    image = require("PIL.Image", package="pillow")
    if isinstance(sample, image.Image):
        return sample
    if isinstance(sample, Tensor):
        sample = sample.permute(1, 2, 0).numpy() if sample.ndim == 3 else sample.numpy()
    try:
        return image.fromarray(sample)  # type: ignore[arg-type]
    except (TypeError, AttributeError) as exc:
        raise DataError(
            f"an image sample must be a PIL image, an array or a tensor, got "
            f"{type(sample).__name__}",
            hint="declare dtype 'image' for PIL images; tensors are used as they are",
        ) from exc


class HFImagePreprocess:
    """A transformers image processor (``CLIPImageProcessor``, ``SiglipImageProcessor``) for one
    sample → ``(3, H, W)``.

    Takes PIL images, ``uint8`` arrays ``(H, W, C)`` and tensors ``(C, H, W)``: ``uint8`` tensors
    go through the processor as images, float tensors are taken to be in ``[0, 1]`` already.
    """

    def __init__(self, processor: Any) -> None:
        self.processor = processor

    def __call__(self, sample: object) -> Tensor:
        kwargs: dict[str, Any] = {"return_tensors": "pt"}
        if isinstance(sample, Tensor) and sample.is_floating_point():
            kwargs["do_rescale"] = False
            image: Any = sample
        elif isinstance(sample, Tensor):
            image = sample
        else:
            image = _to_image(sample)
        return self.processor(images=image, **kwargs)["pixel_values"][0]


class OpenClipImagePreprocess:
    """open_clip's eval transform (resize, centre crop, normalise) for one image."""

    def __init__(self, transform: Callable[[Any], Tensor]) -> None:
        self.transform = transform

    def __call__(self, sample: object) -> Tensor:
        if isinstance(sample, Tensor) and sample.is_floating_point():
            sample = (sample.clamp(0, 1) * 255).round().to(torch.uint8)
        return self.transform(_to_image(sample).convert("RGB"))


class OpenClipTokenize:
    """open_clip's tokenizer for one caption → ``LongTensor (context_length,)``.

    open_clip truncates long captions itself (keeping the end-of-text token) without counting.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def __call__(self, caption: str | Sequence[str]) -> Tensor:
        if isinstance(caption, str):
            return self.tokenizer([caption])[0].long()
        if isinstance(caption, Sequence) and all(isinstance(c, str) for c in caption):
            return self.tokenizer(list(caption)).long()
        raise DataError(
            f"a caption must be a str (or a list of str), got {type(caption).__name__}",
            hint="declare the text modality with dtype 'str' only when samples are strings",
        )

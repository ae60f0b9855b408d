"""The timm eval transform for one raw image, adapted to the modality's channels and size."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from modalforge.deps import require
from modalforge.modality import Modality


class TimmPreprocess:
    """PIL image (or ``uint8`` array) → tensor ``(C, H, W)`` the encoder expects.

    Mean and standard deviation come from the model's pretrained config (averaged to one channel for
    grayscale modalities); the output size is the modality's, so samples match the data set's.
    """

    def __init__(self, transform: Callable[[Any], Tensor], channels: int, config: dict) -> None:
        self.transform = transform
        self.channels = channels
        self.config = config

    @classmethod
    def for_model(cls, model: nn.Module, modality: Modality) -> TimmPreprocess:
        timm_data = require("timm.data", package="timm")
        channels = int(modality.channels or 3)
        config = dict(timm_data.resolve_data_config({}, model=model))
        h, w = modality.shape[-2:]
        if h is not None and w is not None:
            config["input_size"] = (channels, h, w)
        config["mean"] = _per_channel(config["mean"], channels)
        config["std"] = _per_channel(config["std"], channels)
        transform = timm_data.create_transform(**config, is_training=False)
        return cls(transform, channels, config)

    def __call__(self, sample: object) -> Tensor:
        image = require("PIL.Image", package="pillow")
        if not isinstance(sample, image.Image):
            sample = image.fromarray(sample)  # type: ignore[arg-type]
        mode = "L" if self.channels == 1 else "RGB"
        if sample.mode != mode:
            sample = sample.convert(mode)
        return self.transform(sample)


def _per_channel(values: tuple[float, ...], channels: int) -> tuple[float, ...]:
    values = tuple(float(v) for v in values)
    if len(values) == channels:
        return values
    if channels == 1:
        return (sum(values) / len(values),)
    return tuple(values[i % len(values)] for i in range(channels))

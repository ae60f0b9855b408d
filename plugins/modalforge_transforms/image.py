"""Image augmentation and preprocessing steps from torchvision's ``transforms.v2``.

Each works on a raw PIL image or on a ``(C, H, W)`` tensor, so the same spec line serves an
image folder (PIL images, before the encoder's own resize and normalisation) and a data set of
image tensors such as ``digits``. Tensor-only steps (``normalize``, ``random_erasing``) say so.
torchvision is imported when a step is built, not when the plugin loads.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from modalforge.contracts import Transform
from modalforge.deps import require
from modalforge.modality import Modality, ModalityKind

IMAGE_KINDS = (ModalityKind.IMAGE2D, ModalityKind.DEPTH)


def _v2() -> Any:  # noqa: ANN401 - the torchvision.transforms.v2 module
    return require("torchvision.transforms.v2", package="torchvision")


class TorchvisionStep(Transform):
    """A torchvision v2 transform applied to one image (PIL or tensor)."""

    accepts = IMAGE_KINDS
    random = True

    def __init__(self, modality: Modality, op: Any) -> None:  # noqa: ANN401 - a v2 transform
        super().__init__(modality)
        self.op = op

    def __call__(self, sample: Any) -> Any:  # noqa: ANN401
        return self.op(sample)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.op!r})"


def _size(modality: Modality, size: int | None) -> tuple[int, int] | None:
    """``size`` as (H, W), else the modality's (H, W); checked against tensor modalities."""
    h, w = modality.shape[-2:]
    if size is None:
        if h is None or w is None:
            return None
        return (int(h), int(w))
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    return (size, size)


class RandomResizedCrop(TorchvisionStep):
    """A random crop of ``scale`` × the area and ``ratio`` aspect, resized to ``size``
    (default: the modality's size, or for raw images of unknown size each image's own)."""

    def __init__(
        self,
        modality: Modality,
        size: int | None = None,
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
    ) -> None:
        hw = _size(modality, size)
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"scale must satisfy 0 < min <= max <= 1, got {scale}")
        if hw is None:  # raw images of any size: back to each one's own size
            super().__init__(modality, _OwnSize("RandomResizedCrop", scale=scale, ratio=ratio))
            return
        if not modality.is_raw and hw != tuple(modality.shape[-2:]):
            raise ValueError(
                f"a crop to {hw} would change {modality.describe()}'s size; leave size unset"
            )
        super().__init__(modality, _v2().RandomResizedCrop(hw, scale=scale, ratio=ratio))


class RandomCrop(TorchvisionStep):
    """Pad by ``padding`` pixels on every side, then crop back to the original size at a random
    position (the CIFAR-style shift augmentation)."""

    def __init__(
        self,
        modality: Modality,
        padding: int = 4,
        padding_mode: Literal["constant", "edge", "reflect", "symmetric"] = "constant",
        fill: float = 0.0,
    ) -> None:
        if padding < 0:
            raise ValueError(f"padding must be 0 or more, got {padding}")
        op = _OwnSize("RandomCrop", padding=padding, padding_mode=padding_mode, fill=fill)
        super().__init__(modality, op)


class _OwnSize:
    """A v2 transform whose output size is each input's own (raw images vary in size)."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        self.name, self.kwargs = name, kwargs

    def __call__(self, sample: Any) -> Any:  # noqa: ANN401
        v2 = _v2()
        size = tuple(v2.functional.get_size(sample))
        return getattr(v2, self.name)(size, **self.kwargs)(sample)

    def __repr__(self) -> str:
        return f"{self.name}(own size, {self.kwargs})"


class HorizontalFlip(TorchvisionStep):
    """Mirror left–right with probability ``p``."""

    def __init__(self, modality: Modality, p: float = 0.5) -> None:
        super().__init__(modality, _v2().RandomHorizontalFlip(p=_prob(p)))


class VerticalFlip(TorchvisionStep):
    """Mirror top–bottom with probability ``p``."""

    def __init__(self, modality: Modality, p: float = 0.5) -> None:
        super().__init__(modality, _v2().RandomVerticalFlip(p=_prob(p)))


def _prob(p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    return p


class Rotation(TorchvisionStep):
    """Rotate by an angle drawn from ``[-degrees, degrees]``; uncovered corners get ``fill``."""

    def __init__(self, modality: Modality, degrees: float = 15.0, fill: float = 0.0) -> None:
        super().__init__(modality, _v2().RandomRotation(degrees, fill=fill))


class Affine(TorchvisionStep):
    """Random rotation, translation (fractions of the size) and scaling in one step."""

    def __init__(
        self,
        modality: Modality,
        degrees: float = 0.0,
        translate: tuple[float, float] | None = (0.1, 0.1),
        scale: tuple[float, float] | None = (0.9, 1.1),
        fill: float = 0.0,
    ) -> None:
        op = _v2().RandomAffine(degrees, translate=translate, scale=scale, fill=fill)
        super().__init__(modality, op)


class ColorJitter(TorchvisionStep):
    """Random brightness, contrast, saturation and hue changes (each a ± range; 0: off)."""

    def __init__(
        self,
        modality: Modality,
        brightness: float = 0.0,
        contrast: float = 0.0,
        saturation: float = 0.0,
        hue: float = 0.0,
    ) -> None:
        if not 0.0 <= hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5], got {hue}")
        if min(brightness, contrast, saturation) < 0:
            raise ValueError("brightness, contrast and saturation must be 0 or more")
        op = _v2().ColorJitter(brightness, contrast, saturation, hue)
        super().__init__(modality, op)


class RandAugment(TorchvisionStep):
    """``num_ops`` random operations of strength ``magnitude`` (of ``num_magnitude_bins``)."""

    def __init__(
        self,
        modality: Modality,
        num_ops: int = 2,
        magnitude: int = 9,
        num_magnitude_bins: int = 31,
    ) -> None:
        op = _v2().RandAugment(num_ops, magnitude, num_magnitude_bins)
        super().__init__(modality, op)


class TrivialAugment(TorchvisionStep):
    """One random operation of random strength per image (TrivialAugment Wide)."""

    def __init__(self, modality: Modality, num_magnitude_bins: int = 31) -> None:
        super().__init__(modality, _v2().TrivialAugmentWide(num_magnitude_bins))


class AutoAugment(TorchvisionStep):
    """The learned AutoAugment policy for ImageNet, CIFAR-10 or SVHN."""

    def __init__(
        self, modality: Modality, policy: Literal["imagenet", "cifar10", "svhn"] = "imagenet"
    ) -> None:
        v2 = _v2()
        chosen = {
            "imagenet": v2.AutoAugmentPolicy.IMAGENET,
            "cifar10": v2.AutoAugmentPolicy.CIFAR10,
            "svhn": v2.AutoAugmentPolicy.SVHN,
        }[policy]
        super().__init__(modality, v2.AutoAugment(chosen))


class GaussianBlur(TorchvisionStep):
    """Blur with an odd ``kernel_size`` and a standard deviation drawn from ``sigma``."""

    def __init__(
        self, modality: Modality, kernel_size: int = 3, sigma: tuple[float, float] = (0.1, 2.0)
    ) -> None:
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd number, got {kernel_size}")
        super().__init__(modality, _v2().GaussianBlur(kernel_size, sigma))


class RandomErasing(TorchvisionStep):
    """Erase a random rectangle (``scale`` of the area) with probability ``p`` (tensors)."""

    raw = False

    def __init__(
        self,
        modality: Modality,
        p: float = 0.5,
        scale: tuple[float, float] = (0.02, 0.33),
        value: float = 0.0,
    ) -> None:
        op = _v2().RandomErasing(p=_prob(p), scale=scale, value=value)
        super().__init__(modality, op)


class Normalize(TorchvisionStep):
    """``(x - mean) / std`` per channel (tensors; raw images are normalised by the encoder)."""

    raw = False
    random = False

    def __init__(
        self, modality: Modality, mean: tuple[float, ...] = (0.5,), std: tuple[float, ...] = (0.5,)
    ) -> None:
        channels = int(modality.channels or 1)
        mean, std = _per_channel(mean, channels, modality), _per_channel(std, channels, modality)
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be > 0, got {std}")
        super().__init__(modality, _v2().Normalize(list(mean), list(std)))


def _per_channel(values: tuple[float, ...], channels: int, modality: Modality) -> tuple[float, ...]:
    if len(values) == 1:
        return tuple(values) * channels
    if len(values) != channels:
        raise ValueError(
            f"{len(values)} values for the {channels} channels of {modality.describe()}: give "
            "one value, or one per channel"
        )
    return tuple(values)


class Resize(TorchvisionStep):
    """Resize to ``size`` × ``size`` (a preprocessing step: it sets the modality's size)."""

    random = False

    def __init__(self, modality: Modality, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        super().__init__(modality, _v2().Resize((size, size), antialias=True))
        self.size = size

    def output(self) -> Modality:
        return replace(self.modality, shape=(*self.modality.shape[:-2], self.size, self.size))


class CenterCrop(Resize):
    """Crop the central ``size`` × ``size`` pixels (a preprocessing step)."""

    def __init__(self, modality: Modality, size: int) -> None:
        super().__init__(modality, size)
        self.op = _v2().CenterCrop((size, size))


class ToTensor(TorchvisionStep):
    """A raw PIL image → a ``float32`` ``(C, H, W)`` tensor in ``[0, 1]``, for encoders without
    their own image preprocessing (a CNN or a MONAI network on X-ray-style images)."""

    raw = True
    random = False

    def __init__(self, modality: Modality) -> None:
        import torch

        v2 = _v2()
        super().__init__(
            modality, v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
        )

    def output(self) -> Modality:
        return replace(self.modality, dtype="float32")

"""Built-in transforms: torchvision v2 image augmentation and preprocessing, tabular imputation
and standardisation fitted on the training split, text clean-up before tokenisation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modalforge.plugin import hookimpl
from modalforge_transforms import image, tabular, text

if TYPE_CHECKING:
    from modalforge.registry import Registrar

__all__ = ["register_components"]

IMAGE = {
    "random_resized_crop": image.RandomResizedCrop,
    "random_crop": image.RandomCrop,
    "horizontal_flip": image.HorizontalFlip,
    "vertical_flip": image.VerticalFlip,
    "rotation": image.Rotation,
    "affine": image.Affine,
    "color_jitter": image.ColorJitter,
    "rand_augment": image.RandAugment,
    "trivial_augment": image.TrivialAugment,
    "auto_augment": image.AutoAugment,
    "gaussian_blur": image.GaussianBlur,
    "random_erasing": image.RandomErasing,
    "normalize": image.Normalize,
    "resize": image.Resize,
    "center_crop": image.CenterCrop,
    "to_tensor": image.ToTensor,
}
TABULAR = {"impute": tabular.Impute, "standardize": tabular.Standardize}
TEXT = {
    "lowercase": text.Lowercase,
    "normalize_whitespace": text.NormalizeWhitespace,
    "truncate": text.Truncate,
    "sample_sentences": text.SampleSentences,
}


@hookimpl
def register_components(registry: Registrar) -> None:
    for group, tags in ((IMAGE, ("image",)), (TABULAR, ("tabular", "fitted")), (TEXT, ("text",))):
        for name, factory in group.items():
            registry.transform(name, factory, tags=tags)

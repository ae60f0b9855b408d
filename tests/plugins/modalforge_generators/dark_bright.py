"""Tiny fixtures for the text-conditioned generators: a two-prompt constant-image data set and
small GAN and diffusion builders."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch.utils.data import Dataset

from modalforge.contracts import DatasetReader, Target
from modalforge.modality import Modality
from modalforge.registry import Registrar, Registry
from modalforge_clip.text import ClipTextEncoder
from modalforge_generators.diffusion import TextConditionalDiffusion
from modalforge_generators.gan import TextConditionalGAN
from tests.core.toy import add_training

TEXT = "text"
CONTEXT = 24


class Captioned(Dataset):
    def __init__(self, images: torch.Tensor, captions: list[str]) -> None:
        self.images, self.captions = images, captions

    def __len__(self) -> int:
        return len(self.captions)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"image": self.images[i], TEXT: self.captions[i], "target": i % 2}


class DarkBright(DatasetReader):
    """ "dark" → constant 0.2 images, "bright" → constant 0.8 (plus a little noise), 4×4 or 8×8."""

    def __init__(self, image_size: int = 8, num_samples: int = 64) -> None:
        self.size = image_size
        g = torch.Generator().manual_seed(0)
        level = torch.tensor([0.2, 0.8]).repeat(num_samples // 2)
        noise = 0.02 * torch.randn(num_samples, 1, image_size, image_size, generator=g)
        images = (level[:, None, None, None] + noise).clamp(0, 1)
        captions = ["dark" if i % 2 == 0 else "bright" for i in range(num_samples)]
        self.data = Captioned(images, captions)

    @property
    def modalities(self) -> dict[str, Modality]:
        return {
            "image": Modality("image", "image2d", (1, self.size, self.size)),
            TEXT: Modality(TEXT, "text", (None,), dtype="str"),
        }

    @property
    def target(self) -> Target:
        return Target("multiclass", 2)

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train",)

    def load(self, split: str) -> Dataset:
        return self.data


def registry() -> Registry:
    reg = add_training(Registry())
    r = Registrar(reg, "gan-tests")
    r.dataset("dark_bright", DarkBright)
    r.encoder("clip_text", ClipTextEncoder)
    r.generator("text_gan", TextConditionalGAN)
    r.generator("diffusion", TextConditionalDiffusion)
    return reg


TEXT_PARAMS = {
    "context_length": CONTEXT,
    "vocab_size": 258,
    "width": 16,
    "heads": 2,
    "layers": 1,
    "embed_dim": 16,
}
GAN_PARAMS = {"latent_dim": 4, "cond_dim": 8, "g_width": 8, "d_width": 8}
DIFFUSION_PARAMS = {
    "arch": "mlp",
    "width": 16,
    "mlp_layers": 1,
    "timesteps": 100,
    "sample_steps": 10,
}


def gan_spec(
    gan: dict | None = None,
    epochs: int = 2,
    log_every_steps: int = 4,
    image_size: int = 4,
    generator: str = "text_gan",
    **train: Any,
) -> dict:
    """A spec over :class:`DarkBright` (4 steps per epoch), checkpointed every epoch; ``gan``
    overrides the generator's params (the GAN's, or the diffusion model's)."""
    base = GAN_PARAMS if generator == "text_gan" else DIFFUSION_PARAMS
    return {
        "name": "gan-test",
        "seed": 0,
        "data": {
            "dataset": {"name": "dark_bright", "params": {"image_size": image_size}},
            "batch_size": 16,
            "eval_split": None,
        },
        "model": {
            "generator": {
                "name": generator,
                "params": {**base, "ema_decay": 0.9, **(gan or {})},
            },
            "encoders": {TEXT: {"name": "clip_text", "params": copy.deepcopy(TEXT_PARAMS)}},
        },
        "loss": None,
        "metrics": [],
        "train": {
            "epochs": epochs,
            "lr": 0.005,
            "weight_decay": 0.0,
            "progress": False,
            "tensorboard": False,
            "log_every_steps": log_every_steps,
            "keep_checkpoints": 10,
            **train,
        },
    }


def make_gan(
    image_shape: tuple[int, int, int] = (1, 8, 8),
    text_width: int = 16,
    encoders: dict | None = None,
    **params: Any,
) -> TextConditionalGAN:
    """A GAN built directly (no pipeline), with a tiny ``clip_text`` condition encoder."""
    mods = {
        "image": Modality("image", "image2d", image_shape),
        TEXT: Modality(TEXT, "text", (None,), dtype="str"),
    }
    if encoders is None:
        text_params = {**TEXT_PARAMS, "width": text_width}
        encoders = {TEXT: ClipTextEncoder(mods[TEXT], **text_params)}
    return TextConditionalGAN(modalities=mods, encoders=encoders, **{**GAN_PARAMS, **params})


def make_diffusion(
    image_shape: tuple[int, int, int] = (1, 8, 8), encoders: dict | None = None, **params: Any
) -> TextConditionalDiffusion:
    """A diffusion generator built directly, with a tiny ``clip_text`` condition encoder."""
    mods = {
        "image": Modality("image", "image2d", image_shape),
        TEXT: Modality(TEXT, "text", (None,), dtype="str"),
    }
    if encoders is None:
        encoders = {TEXT: ClipTextEncoder(mods[TEXT], **TEXT_PARAMS)}
    return TextConditionalDiffusion(
        modalities=mods, encoders=encoders, **{**DIFFUSION_PARAMS, **params}
    )

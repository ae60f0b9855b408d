"""A two-caption toy world for the VQ-VAE and DALL·E transformer tests.

Caption "a" goes with dark 1×4×4 images, caption "b" with bright ones: a trained tokenizer maps
them to different 2×2 code grids, and a conditioned transformer must reproduce the right grid
for each prompt.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from modalforge.contracts import DatasetReader, Target
from modalforge.engine import seed_everything, train
from modalforge.modality import Modality
from modalforge.pipeline import Pipeline, build_pipeline
from modalforge.registry import Registrar, Registry
from modalforge.spec import parse_spec
from modalforge_generators.autoregressive import DalleTransformer
from modalforge_generators.vqvae import VQVAE
from tests.core.toy import add_training

DARK, BRIGHT = 0.1, 0.9


class PairList(Dataset):
    def __init__(self, images: torch.Tensor, captions: list[str]) -> None:
        self.images, self.captions = images, captions

    def __len__(self) -> int:
        return len(self.captions)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"image": self.images[i], "text": self.captions[i]}


class ToyCaptions(DatasetReader):
    """``num_samples`` pairs, alternating ("a", dark image) and ("b", bright image)."""

    def __init__(self, num_samples: int = 32, channels: int = 1, size: int = 4) -> None:
        g = torch.Generator().manual_seed(3)
        level = torch.tensor([DARK, BRIGHT]).repeat(num_samples // 2)
        noise = 0.02 * torch.randn(num_samples, channels, size, size, generator=g)
        self.images = (level.view(-1, 1, 1, 1) + noise).clamp(0, 1)
        self.captions = ["a", "b"] * (num_samples // 2)
        self.shape = (channels, size, size)

    @property
    def modalities(self) -> dict[str, Modality]:
        return {
            "image": Modality("image", "image2d", self.shape),
            "text": Modality("text", "text", (None,), dtype="str"),
        }

    @property
    def target(self) -> Target | None:
        return None

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train",)

    def load(self, split: str) -> Dataset:
        return PairList(self.images, self.captions)


def registry() -> Registry:
    reg = add_training(Registry())
    r = Registrar(reg, "vq-tests")
    r.dataset("toy_captions", ToyCaptions)
    r.generator("vqvae", VQVAE)
    r.generator("dalle", DalleTransformer)
    return reg


VQ_PARAMS = {
    "codebook_size": 8,
    "code_dim": 4,
    "hidden": 16,
    "downsample": 2,
    "res_blocks": 0,
    "dead_threshold": 0.5,
    "ema_decay": 0.8,  # a short run: the codebook must follow the encoder quickly
}
DALLE_PARAMS = {
    "context_length": 4,
    "width": 32,
    "layers": 1,
    "heads": 2,
    "dropout": 0.0,
}
TRAIN = {"progress": False, "tensorboard": False, "log_every_steps": 5, "keep_checkpoints": 10}


def spec(generator: str, params: dict, *, epochs: int, lr: float, data: dict | None = None) -> dict:
    return {
        "name": f"toy-{generator}",
        "seed": 0,
        "data": {
            "dataset": {"name": "toy_captions", "params": data or {}},
            "batch_size": 8,
            "eval_split": None,
        },
        "model": {"generator": {"name": generator, "params": copy.deepcopy(params)}},
        "loss": None,
        "metrics": [],
        "train": {**TRAIN, "epochs": epochs, "lr": lr, "weight_decay": 0.0},
    }


def pipeline(spec_dict: dict, init_seed: int = 0) -> Pipeline:
    seed_everything(init_seed)
    return build_pipeline(parse_spec(spec_dict), registry())


def train_vqvae(out: Path, epochs: int = 30, **params: Any) -> Pipeline:
    """Stage 1 through the engine, into run folder ``out``."""
    pipe = pipeline(spec("vqvae", {**VQ_PARAMS, **params}, epochs=epochs, lr=0.02))
    train(pipe, out)
    return pipe


def dalle_spec(tokenizer_run: Path, epochs: int = 10, lr: float = 0.005, **params: Any) -> dict:
    full = {**DALLE_PARAMS, "tokenizer_checkpoint": str(tokenizer_run), **params}
    return spec("dalle", full, epochs=epochs, lr=lr)

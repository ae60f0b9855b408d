"""A hand-set generator over the tiny caption world of ``clip_toy``, for generate/rerank tests.

For a prompt naming class k, candidate j lights pixel ``(k + j) % 4`` of a 1×2×2 image. The
hand-set CLIP maps pixel i < 3 to e_i and pixel 3 to the zero vector, and a caption naming k to
e_k, so candidate j's cosine score is 1 when ``(k + j) % 4 == k`` and 0 otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from modalforge.contracts import Generator
from modalforge.registry import Registrar, Registry
from tests.core.evaluation.clip_toy import CLASSES, WordTokenizer


class PixelGenerator(Generator):
    """Candidate j for class k: one bright pixel at ``(k + shift + j) % 4``."""

    def __init__(self, modalities: dict, shift: int = 0) -> None:
        super().__init__()
        self.shape = tuple(modalities["image"].shape)
        self.shift = shift
        self.brightness = nn.Parameter(torch.ones(()))

    def preprocess(self, modality: str) -> WordTokenizer | None:
        return WordTokenizer(list(CLASSES), 8) if modality == "text" else None

    def configure_optimizers(self, lr: float, weight_decay: float) -> dict:
        return {"model": torch.optim.SGD(self.parameters(), lr=lr)}

    def training_step(self, batch, ctx) -> dict[str, Tensor]:  # noqa: ANN001
        loss = (self.brightness - 1).pow(2)
        ctx.backward(loss)
        ctx.step("model")
        return {"loss": loss.detach()}

    def sample(
        self, condition: Sequence[str], num_samples: int, generator: torch.Generator | None = None
    ) -> Tensor:
        out = torch.zeros(len(condition), num_samples, 4)
        for p, prompt in enumerate(condition):
            words = re.findall(r"[a-z]+", prompt.lower())
            k = next((CLASSES.index(w) for w in words if w in CLASSES), 3)
            for j in range(num_samples):
                out[p, j, (k + self.shift + j) % 4] = self.brightness.detach()
        return out.view(len(condition), num_samples, *self.shape)


class OtherGenerator(PixelGenerator):
    """Same weights, another type: its checkpoints must not load into PixelGenerator."""


def generation_registry(registry: Registry) -> Registry:
    r = Registrar(registry, "toy_generation")
    r.generator("pixel_gen", PixelGenerator)
    r.generator("other_gen", OtherGenerator)
    from modalforge_generators.rerank import ClipReranker

    r.reranker("clip", ClipReranker)
    return registry


def generator_spec(name: str = "pixel_gen", **params: object) -> dict:
    return {
        "name": "toygen",
        "data": {"dataset": "captions", "batch_size": 8},
        "model": {"generator": {"name": name, "params": params}},
        "train": {"epochs": 1, "progress": False, "tensorboard": False},
    }

"""A tiny image–caption world for evaluation tests: exact answers with hand-set weights.

Images are 2×2 with one bright pixel per class (plus noise); captions say the class name. With
``hand_set=True`` the pixel encoder maps class k's image to about e_k and the word encoder maps any
text that names class k to exactly e_k, so zero-shot accuracy and class-level retrieval are 1.0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from modalforge.contracts import DatasetReader, Encoder, FeatureSpec, Loss, LossOutput, Target
from modalforge.modality import Modality, ModalityKind
from modalforge.registry import Registrar, Registry
from tests.core.toy import add_training

CLASSES = ("red", "green", "blue")


class CaptionSamples(Dataset):
    def __init__(self, images: Tensor, labels: Tensor, prefix: str) -> None:
        self.images, self.labels, self.prefix = images, labels, prefix

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, object]:
        label = int(self.labels[i])
        return {
            "image": self.images[i],
            "text": f"a photo of a {CLASSES[label]}",
            "target": self.labels[i],
            "id": f"{self.prefix}-{i:03d}",
        }


class ToyCaptions(DatasetReader):
    """``image`` (1, 2, 2) tensors, raw ``text`` captions, a 3-class target; train/test."""

    def __init__(self, num_samples: int = 24, noise: float = 0.2) -> None:
        self._splits = {}
        for seed, split in enumerate(("train", "test")):
            g = torch.Generator().manual_seed(seed)
            labels = torch.arange(num_samples) % len(CLASSES)
            x = F.one_hot(labels, 4).float() + noise * torch.randn(num_samples, 4, generator=g)
            self._splits[split] = CaptionSamples(x.reshape(-1, 1, 2, 2), labels, split)

    @property
    def modalities(self) -> dict[str, Modality]:
        return {
            "image": Modality("image", ModalityKind.IMAGE2D, (1, 2, 2)),
            "text": Modality("text", ModalityKind.TEXT, (None,), dtype="str"),
        }

    @property
    def target(self) -> Target:
        return Target("multiclass", len(CLASSES), CLASSES)

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self._splits)

    def load(self, split: str) -> Dataset:
        return self._splits[split]


class WordTokenizer:
    """Caption → LongTensor (context_length,) of vocabulary ids (0: unknown word or padding)."""

    def __init__(self, vocab: list[str], context_length: int) -> None:
        self.ids = {w: i + 1 for i, w in enumerate(vocab)}
        self.context_length = context_length

    def __call__(self, text: object) -> Tensor:
        words = re.findall(r"[a-z]+", str(text).lower())[: self.context_length]
        ids = [self.ids.get(w, 0) for w in words]
        return torch.tensor(ids + [0] * (self.context_length - len(ids)), dtype=torch.long)


class WordEncoder(Encoder):
    """Sum of word embeddings; ``hand_set``: word i of the vocabulary → e_i."""

    accepts = (ModalityKind.TEXT,)

    def __init__(
        self,
        modality: Modality,
        vocab: list[str] | None = None,
        dim: int = 3,
        context_length: int = 8,
        hand_set: bool = False,
    ) -> None:
        super().__init__(modality)
        self.vocab = list(vocab or CLASSES)
        self.context_length = context_length
        self.embed = nn.Embedding(len(self.vocab) + 1, dim, padding_idx=0)
        if hand_set:
            with torch.no_grad():
                self.embed.weight.zero_()
                self.embed.weight[1:] = torch.eye(len(self.vocab), dim)
        self._out = FeatureSpec(dim)

    @property
    def output(self) -> FeatureSpec:
        return self._out

    def preprocess(self) -> WordTokenizer:
        return WordTokenizer(self.vocab, self.context_length)

    def forward(self, x: Tensor) -> Tensor:
        return self.embed(x).sum(dim=1)


class PixelEncoder(Encoder):
    """A bias-free linear map of the flattened image; ``hand_set``: pixel i → e_i."""

    accepts = (ModalityKind.IMAGE2D,)

    def __init__(self, modality: Modality, dim: int = 3, hand_set: bool = False) -> None:
        super().__init__(modality)
        numel = 1
        for d in modality.shape:
            numel *= d
        self.proj = nn.Linear(numel, dim, bias=False)
        if hand_set:
            with torch.no_grad():
                self.proj.weight.copy_(torch.eye(dim, numel))
        self._out = FeatureSpec(dim)

    @property
    def output(self) -> FeatureSpec:
        return self._out

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x.flatten(1))


class InfoNCE(Loss):
    """Symmetric cross-entropy over the batch's image–text similarities (temperature 0.1)."""

    def forward(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> LossOutput:
        logits = outputs["embed.image"] @ outputs["embed.text"].T / 0.1
        y = torch.arange(len(logits), device=logits.device)
        loss = (F.cross_entropy(logits, y) + F.cross_entropy(logits.T, y)) / 2
        return LossOutput(loss, {"contrastive": loss})


def clip_registry(registry: Registry | None = None) -> Registry:
    """These components and the embedding metrics, added to ``registry`` (or a new one)."""
    from modalforge_metrics import LinearProbe, Retrieval, SvmProbe, ZeroShot

    registry = registry if registry is not None else add_training(Registry())
    r = Registrar(registry, "clip_toy")
    r.dataset("captions", ToyCaptions)
    r.encoder("words", WordEncoder)
    r.encoder("pixels", PixelEncoder)
    r.loss("infonce", InfoNCE)
    r.metric("zeroshot", ZeroShot)
    r.metric("retrieval", Retrieval)
    r.metric("linear_probe", LinearProbe)
    r.metric("svm_probe", SvmProbe)
    return registry


def clip_spec(hand_set: bool = True, **changes: object) -> dict:
    """A contrastive spec over :func:`clip_registry`; ``changes`` replace top-level sections."""
    spec = {
        "name": "toyclip",
        "data": {"dataset": "captions", "batch_size": 8},
        "model": {
            "type": "contrastive",
            "encoders": {
                "image": {"name": "pixels", "params": {"hand_set": hand_set}},
                "text": {"name": "words", "params": {"hand_set": hand_set}},
            },
        },
        "loss": "infonce",
        "metrics": [
            {"name": "zeroshot", "params": {"templates": ["a photo of a {}", "{}"]}},
            {"name": "retrieval", "params": {"hit": "class"}},
        ],
        "train": {"epochs": 1, "progress": False, "tensorboard": False},
    }
    spec.update(changes)
    return spec

"""``retrieval``: image → text and text → image recall@k and ranks over the evaluated split."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import torch
from torch import Tensor

from modalforge.contracts import Metric, Target, TargetKind
from modalforge.evaluation import image_text_retrieval
from modalforge.pipeline import embed_key
from modalforge_metrics.embedding import read_labels, read_output


class Retrieval(Metric):
    """Cross-modal retrieval among all samples of the split, in both directions.

    ``hit="instance"``: sample i's image and text are each other's only match (paired data).
    ``hit="class"``: any sample with the same class label counts, for data where many samples
    share one caption (the digits). Ties count against the query. Reports
    ``retrieval_{i2t,t2i}_r<k>``, ``..._mean_rank`` and ``..._median_rank``. Embeddings are kept
    on the model's device until :meth:`compute`, which works through ``chunk_size`` queries at a
    time.
    """

    name = "retrieval"

    def __init__(
        self,
        target: Target | None = None,
        hit: Literal["instance", "class"] = "instance",
        image_modality: str = "image",
        text_modality: str = "text",
        ks: tuple[int, ...] = (1, 5, 10),
        chunk_size: int = 1024,
    ) -> None:
        if hit == "class" and target is not None and target.kind != TargetKind.MULTICLASS:
            raise ValueError(f"hit='class' needs a multiclass target, the data set's is {target}")
        if not ks or min(ks) < 1 or chunk_size < 1:
            raise ValueError("ks must be positive integers and chunk_size at least 1")
        self.hit = hit
        self.image_modality = image_modality
        self.text_modality = text_modality
        self.ks = tuple(ks)
        self.chunk_size = chunk_size
        self.reset()

    def reset(self) -> None:
        self._images: list[Tensor] = []
        self._texts: list[Tensor] = []
        self._labels: list[Tensor] = []

    def update(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> None:
        img = read_output(outputs, embed_key(self.image_modality), self.name, "image_modality")
        txt = read_output(outputs, embed_key(self.text_modality), self.name, "text_modality")
        self._images.append(img.float())
        self._texts.append(txt.float())
        if self.hit == "class":
            self._labels.append(read_labels(batch, self.name))

    def compute(self) -> dict[str, float]:
        if not self._images:
            keys = [f"{d}_{s}" for d in ("i2t", "t2i") for s in self._stats()]
            return {f"{self.name}_{k}": math.nan for k in keys}
        images, texts = torch.cat(self._images), torch.cat(self._texts)
        labels = torch.cat(self._labels).to(images.device) if self.hit == "class" else None
        out = image_text_retrieval(
            images,
            texts,
            image_labels=labels,
            text_labels=labels,
            ks=self.ks,
            chunk_size=self.chunk_size,
        )
        return {f"{self.name}_{k}": v for k, v in out.items()}

    def _stats(self) -> list[str]:
        return [*(f"r{k}" for k in self.ks), "mean_rank", "median_rank"]

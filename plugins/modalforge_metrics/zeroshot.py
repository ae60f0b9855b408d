"""``zeroshot``: classify images by their similarity to embedded class-name prompts (CLIP)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from modalforge.contracts import DatasetReader, Metric, Target
from modalforge.evaluation import (
    DEFAULT_TEMPLATES,
    build_zeroshot_classifier,
    text_encoder,
    validate_prompts,
    zeroshot_logits,
)
from modalforge.pipeline import embed_key
from modalforge_metrics.embedding import contrastive_parts, read_labels, read_output


class ZeroShot(Metric):
    """Zero-shot top-1 / top-k accuracy: image embeddings vs. class-name prompt embeddings.

    Before each evaluation pass the classifier is built with the model's text encoder, as
    open_clip does: each class name is put into every template, the prompts are embedded and
    L2-normalised, averaged per class and normalised again. Class names come from the data set's
    target (or ``class_names``); templates from ``templates``, else the data set's own
    ``templates`` attribute when it has one (e.g. ``digits_captions``), else a generic CLIP-style
    set. Reports
    ``zeroshot_top1`` and ``zeroshot_top<top_k>`` (k capped at the number of classes).
    """

    name = "zeroshot"

    def __init__(
        self,
        target: Target | None = None,
        dataset: DatasetReader | None = None,
        templates: list[str] | None = None,
        class_names: list[str] | None = None,
        image_modality: str = "image",
        text_modality: str = "text",
        top_k: int = 5,
        batch_size: int = 256,
    ) -> None:
        names = list(class_names) if class_names else list(target.class_names if target else ())
        if not names:
            raise ValueError(
                "zero-shot classification needs class names, and the data set's target has none; "
                "set params.class_names (one name per class, in label order)"
            )
        if class_names and target is not None and len(names) != target.num_outputs:
            raise ValueError(
                f"{len(names)} class_names for a target with {target.num_outputs} classes"
            )
        if top_k < 1 or batch_size < 1:
            raise ValueError("top_k and batch_size must be at least 1")
        self.class_names = names
        templates = templates or getattr(dataset, "templates", None) or DEFAULT_TEMPLATES
        self.templates = list(templates)
        validate_prompts(self.class_names, self.templates)
        self.image_modality = image_modality
        self.text_modality = text_modality
        self.top_k = top_k
        self.batch_size = batch_size
        self.classifier: Tensor | None = None
        self.reset()

    def reset(self) -> None:
        self._correct: Tensor | None = None  # (2,) hits at top-1 and top-k, on the device
        self._total = 0

    def prepare(self, model: nn.Module) -> None:
        model = contrastive_parts(model, (self.image_modality, self.text_modality), self.name)
        # prompts are tokenised by the text encoder's own preprocess() and moved to the model's
        # device; an encoder without preprocessing receives the raw strings
        encode = text_encoder(model, self.text_modality)
        with torch.no_grad():
            self.classifier = build_zeroshot_classifier(
                encode, self.class_names, self.templates, batch_size=self.batch_size
            )

    def update(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> None:
        if self.classifier is None:
            raise RuntimeError("ZeroShot.prepare(model) must run before update()")
        z = read_output(outputs, embed_key(self.image_modality), self.name, "image_modality")
        y = read_labels(batch, self.name).to(z.device)
        logits = zeroshot_logits(z, self.classifier)
        k = min(self.top_k, logits.shape[1])
        top = logits.topk(k, dim=1).indices == y.unsqueeze(1)
        hits = torch.stack([top[:, 0].sum(), top.any(dim=1).sum()])
        self._correct = hits if self._correct is None else self._correct + hits
        self._total += int(y.shape[0])

    def compute(self) -> dict[str, float]:
        keys = (f"{self.name}_top1", f"{self.name}_top{self.top_k}")
        if not self._total or self._correct is None:
            return dict.fromkeys(keys, math.nan)
        top1, topk = (self._correct.double() / self._total).tolist()
        return {keys[0]: top1, keys[1]: topk}

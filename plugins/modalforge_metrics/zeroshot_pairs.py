"""``zeroshot_findings``: multi-label zero-shot scores from positive / negative prompt pairs."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor, nn

from modalforge.contracts import TARGET_KEY, DatasetReader, Metric, Target, TargetKind
from modalforge.errors import DataError, SpecError
from modalforge.evaluation import (
    build_prompt_pair_classifier,
    prompt_pair_scores,
    text_encoder,
    validate_prompt_pairs,
)
from modalforge.modality import ModalityKind
from modalforge.pipeline import embed_key
from modalforge_metrics.embedding import contrastive_parts, read_output


class ZeroShotFindings(Metric):
    """Zero-shot ROC-AUC per finding and macro, CheXzero style, for a multi-label target.

    Each finding's positive and negative prompts are embedded with the model's text encoder
    before each evaluation pass (see :mod:`modalforge.evaluation.prompt_pairs`); an image's
    score for the finding is the softmax of its similarities to the two sides. ``prompts`` maps
    each class of the target to ``{positive: [...], negative: [...]}``; by default the data set's
    own ``prompts`` (e.g. ``synthetic_studies``). ``image_modality`` / ``text_modality`` default
    to the data set's one image-like (2-D or 3-D) and one text modality. Reports
    ``zeroshot_auc_macro`` and ``zeroshot_auc/<finding>``, ranked by the pair's logit (see
    :func:`prompt_pair_scores`). A finding with one class in the evaluated split is an error,
    never a silent NaN.
    """

    name = "zeroshot_findings"

    def __init__(
        self,
        target: Target | None = None,
        dataset: DatasetReader | None = None,
        prompts: dict[str, dict[str, list[str]]] | None = None,
        image_modality: str | None = None,
        text_modality: str | None = None,
        scale: float = 100.0,
        batch_size: int = 256,
    ) -> None:
        if target is None or target.kind != TargetKind.MULTILABEL or not target.class_names:
            raise SpecError(
                "metrics",
                "zeroshot_findings needs a multi-label target with class names (the findings)",
                hint="use a data set whose target is multilabel, or the `zeroshot` metric",
            )
        prompts = prompts or getattr(dataset, "prompts", None)
        if not prompts:
            raise SpecError(
                "metrics",
                "zeroshot_findings has no prompts: the data set gives none",
                hint="set params.prompts: {FINDING: {positive: [...], negative: [...]}, ...}",
            )
        try:
            validate_prompt_pairs(prompts, target.class_names)
        except ValueError as exc:
            raise SpecError("metrics", f"zeroshot_findings params.prompts: {exc}") from None
        if scale <= 0 or batch_size < 1:
            raise SpecError("metrics", "zeroshot_findings: scale must be > 0, batch_size >= 1")
        self.class_names = list(target.class_names)
        self.prompts = {k: dict(v) for k, v in prompts.items()}
        self.image_modality = image_modality or _only(dataset, IMAGE_KINDS, "image_modality")
        self.text_modality = text_modality or _only(dataset, (ModalityKind.TEXT,), "text_modality")
        self.scale, self.batch_size = scale, batch_size
        self.classifier: Tensor | None = None
        self.reset()

    def reset(self) -> None:
        self._scores: list[Tensor] = []
        self._targets: list[Tensor] = []

    def prepare(self, model: nn.Module) -> None:
        model = contrastive_parts(model, (self.image_modality, self.text_modality), self.name)
        encode = text_encoder(model, self.text_modality)
        with torch.no_grad():
            self.classifier = build_prompt_pair_classifier(
                encode, self.prompts, self.class_names, batch_size=self.batch_size
            )

    def update(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> None:
        if self.classifier is None:
            raise RuntimeError("ZeroShotFindings.prepare(model) must run before update()")
        z = read_output(outputs, embed_key(self.image_modality), self.name, "image_modality")
        if TARGET_KEY not in batch:
            raise DataError(f"metric {self.name!r} needs labelled data ({TARGET_KEY!r})")
        self._scores.append(prompt_pair_scores(z, self.classifier, self.scale))
        self._targets.append(batch[TARGET_KEY].detach())

    def scores(self) -> tuple[np.ndarray, np.ndarray]:
        """The collected ``(logits, targets)``, each ``(N, C)``; see :func:`prompt_pair_scores`."""
        if not self._scores:
            raise DataError(f"metric {self.name!r}: the evaluated split has no samples")
        scores = torch.cat(self._scores).double().cpu().numpy()
        return scores, (torch.cat(self._targets).cpu().numpy() > 0.5).astype(int)

    def probabilities(self) -> tuple[np.ndarray, np.ndarray]:
        """The collected ``(probabilities, targets)``, each ``(N, C)``."""
        scores, y = self.scores()
        return 1.0 / (1.0 + np.exp(-scores)), y

    def compute(self) -> dict[str, float]:
        from sklearn.metrics import roc_auc_score

        scores, y = self.scores()  # ranks without the saturation of probabilities
        out: dict[str, float] = {}
        for c, name in enumerate(self.class_names):
            positives = int(y[:, c].sum())
            if positives in (0, len(y)):
                raise DataError(
                    f"metric {self.name!r}: finding {name!r} has "
                    f"{'no' if positives == 0 else 'only'} positive cases among the {len(y)} "
                    "evaluated, so its ROC-AUC is undefined",
                    hint="evaluate on a split where every finding is present and absent",
                )
            out[f"zeroshot_auc/{name}"] = float(roc_auc_score(y[:, c], scores[:, c]))
        out["zeroshot_auc_macro"] = float(np.mean(list(out.values())))
        return out


IMAGE_KINDS = (ModalityKind.IMAGE2D, ModalityKind.VOLUME3D)


def _only(dataset: DatasetReader | None, kinds: tuple[ModalityKind, ...], param: str) -> str:
    """The name of the data set's single modality of one of ``kinds`` (for a default)."""
    names = [
        name
        for name, modality in (getattr(dataset, "modalities", None) or {}).items()
        if modality.kind in kinds
    ]
    if len(names) != 1:
        found = ", ".join(names) or "none"
        raise SpecError(
            "metrics",
            f"zeroshot_findings cannot choose {param}: the data set's candidates are {found}",
            hint=f"set the metric's params.{param} to a modality name",
        )
    return names[0]

"""Zero-shot multi-label classification from prompt pairs (CheXzero style).

Each finding has positive phrasings ("a lesion in the left lobe") and negative ones ("no lesion
in the left lobe"). Each side's prompts are embedded, L2-normalised, averaged and normalised
again, as for class-name prompts; an image's probability of the finding is the softmax of its
scaled cosine similarities to the positive and the negative vector. Comparing the two sides
of one finding, rather than all findings against each other, lets several findings be present at
once and makes a negated phrasing count against the finding, not for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

SIDES = ("positive", "negative")

PromptPairs = Mapping[str, Mapping[str, Sequence[str]]]


def validate_prompt_pairs(prompts: PromptPairs, class_names: Sequence[str] | None = None) -> None:
    """Raise :class:`ValueError` unless every finding has non-empty ``positive`` and
    ``negative`` prompt lists of strings, no prompt is on both sides, and (if given) the findings
    are exactly ``class_names``."""
    if not isinstance(prompts, Mapping) or not prompts:
        raise ValueError("prompts must map each finding to {positive: [...], negative: [...]}")
    for name, pair in prompts.items():
        if not isinstance(pair, Mapping) or set(pair) != set(SIDES):
            keys = sorted(pair) if isinstance(pair, Mapping) else type(pair).__name__
            raise ValueError(
                f"finding {name!r}: needs exactly `positive` and `negative`, got {keys}"
            )
        for side in SIDES:
            texts = pair[side]
            if isinstance(texts, str) or not texts or not all(isinstance(t, str) for t in texts):
                raise ValueError(f"finding {name!r}: `{side}` must be a non-empty list of strings")
            if not all(t.strip() for t in texts):
                raise ValueError(f"finding {name!r}: `{side}` has an empty prompt")
        both = set(pair["positive"]) & set(pair["negative"])
        if both:
            raise ValueError(f"finding {name!r}: {sorted(both)} is both positive and negative")
    if class_names is not None:
        missing = [c for c in class_names if c not in prompts]
        extra = [p for p in prompts if p not in class_names]
        if missing or extra:
            raise ValueError(
                f"the prompts must name each class of the target ({', '.join(class_names)}); "
                f"missing {missing or 'none'}, unknown {extra or 'none'}"
            )


@torch.no_grad()
def build_prompt_pair_classifier(
    encode_text: Callable[[list[str]], Tensor],
    prompts: PromptPairs,
    class_names: Sequence[str],
    *,
    batch_size: int = 256,
) -> Tensor:
    """``(C, 2, D)``: per finding (in ``class_names`` order), the positive and the negative
    vector, each the re-normalised mean of its normalised prompt embeddings."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    validate_prompt_pairs(prompts, class_names)
    texts = [t for name in class_names for side in SIDES for t in prompts[name][side]]
    chunks = []
    for start in range(0, len(texts), batch_size):
        part = texts[start : start + batch_size]
        z = encode_text(part)
        if z.ndim != 2 or z.shape[0] != len(part):
            raise ValueError(
                f"encode_text returned shape {tuple(z.shape)} for {len(part)} prompts; "
                "expected (num_prompts, embed_dim)"
            )
        chunks.append(F.normalize(z.float(), dim=-1))
    z = torch.cat(chunks)
    vectors, start = [], 0
    for name in class_names:
        for side in SIDES:
            n = len(prompts[name][side])
            vectors.append(F.normalize(z[start : start + n].mean(0), dim=-1))
            start += n
    return torch.stack(vectors).reshape(len(class_names), 2, -1)


def prompt_pair_scores(image_embeds: Tensor, classifier: Tensor, scale: float = 100.0) -> Tensor:
    """``(N, C)`` logit of each finding: ``scale`` × (cosine similarity to the positive prompts −
    to the negative ones), whose sigmoid is :func:`prompt_pair_probs`. Rank by these (ROC-AUC):
    with CLIP's scale of 100 the probabilities of confident images round to exactly 0 or 1."""
    if image_embeds.shape[-1] != classifier.shape[-1]:
        raise ValueError(
            f"image embeddings have dim {image_embeds.shape[-1]}, the prompt vectors "
            f"{classifier.shape[-1]}: they come from different embedding spaces"
        )
    z = F.normalize(image_embeds.float(), dim=-1)
    sims = torch.einsum("nd,csd->ncs", z, classifier.to(device=z.device, dtype=z.dtype))
    return scale * (sims[..., 0] - sims[..., 1])


def prompt_pair_probs(image_embeds: Tensor, classifier: Tensor, scale: float = 100.0) -> Tensor:
    """``(N, C)`` probabilities of each finding: the softmax over (positive, negative) of
    ``scale`` × cosine similarity (``scale`` is the model's logit scale, CLIP's 100 at most)."""
    return torch.sigmoid(prompt_pair_scores(image_embeds, classifier, scale))

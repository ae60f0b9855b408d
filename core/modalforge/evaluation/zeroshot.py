"""Zero-shot classification: class-name prompts embedded by the text tower, matched to images.

The classifier is built exactly as open_clip's ``build_zero_shot_classifier`` does: for each class,
every template is filled with the class name and embedded; each embedding is L2-normalised, the
class's embeddings are averaged, and the mean is normalised again. Its columns are class vectors.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

Template = str | Callable[[str], str]

#: A generic CLIP-style prompt set (a few of the "simple" ImageNet templates of the CLIP repo,
#: with the domain-specific ones left out), used when a caller gives none.
DEFAULT_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a picture of a {}.",
    "an image of a {}.",
    "a photo of the {}.",
    "a close-up photo of a {}.",
    "a drawing of a {}.",
    "a {}.",
)


def format_prompts(class_name: str, templates: Sequence[Template]) -> list[str]:
    """Every template filled with ``class_name`` (``str.format`` strings or callables)."""
    return [t.format(class_name) if isinstance(t, str) else t(class_name) for t in templates]


def validate_prompts(class_names: Sequence[str], templates: Sequence[Template]) -> None:
    """Raise :class:`ValueError` for no classes or templates, duplicate class names, or a string
    template without ``{}``."""
    if isinstance(class_names, str) or len(class_names) == 0:
        raise ValueError("class_names must be a non-empty sequence of strings")
    if isinstance(templates, str) or len(templates) == 0:
        raise ValueError("templates must be a non-empty sequence of strings or callables")
    dupes = [name for name, n in Counter(class_names).items() if n > 1]
    if dupes:
        raise ValueError(
            f"duplicate class names {', '.join(map(repr, dupes))}: each class needs its own "
            "name, or two classes get the same classifier vector"
        )
    for t in templates:
        if isinstance(t, str):
            if "{}" not in t:
                raise ValueError(
                    f"template {t!r} has no '{{}}' placeholder for the class name, so it would "
                    "give every class the same prompt"
                )
            try:
                t.format("class")
            except (IndexError, KeyError, ValueError) as exc:
                raise ValueError(
                    f"template {t!r} must have exactly one '{{}}' for the class name and no other "
                    f"braces ({type(exc).__name__}: {exc}); write a literal brace as '{{{{' or "
                    "'}}'"
                ) from None
        elif not callable(t):
            raise ValueError(f"template {t!r} is neither a str nor a callable")


@torch.no_grad()
def build_zeroshot_classifier(
    encode_text: Callable[[list[str]], Tensor],
    class_names: Sequence[str],
    templates: Sequence[Template] = DEFAULT_TEMPLATES,
    *,
    batch_size: int = 256,
) -> Tensor:
    """Class vectors ``(D, C)``: per class, the re-normalised mean of normalised prompt embeddings.

    ``encode_text`` maps a list of prompts to embeddings ``(len(prompts), D)``; it is called on
    batches of at most ``batch_size`` prompts (the prompts of all classes, in class order).
    Duplicate class names and string templates without ``{}`` raise :class:`ValueError`.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    validate_prompts(class_names, templates)
    prompts = [p for name in class_names for p in format_prompts(name, templates)]
    chunks = []
    for start in range(0, len(prompts), batch_size):
        part = prompts[start : start + batch_size]
        z = encode_text(part)
        if z.ndim != 2 or z.shape[0] != len(part):
            raise ValueError(
                f"encode_text returned shape {tuple(z.shape)} for {len(part)} prompts; "
                "expected (num_prompts, embed_dim)"
            )
        chunks.append(F.normalize(z.float(), dim=-1))
    z = torch.cat(chunks).reshape(len(class_names), len(templates), -1).mean(dim=1)
    return F.normalize(z, dim=-1).T.contiguous()


def zeroshot_logits(image_embeds: Tensor, classifier: Tensor) -> Tensor:
    """Cosine similarities ``(N, C)`` of L2-normalised image embeddings to the class vectors."""
    if image_embeds.shape[-1] != classifier.shape[0]:
        raise ValueError(
            f"image embeddings have dim {image_embeds.shape[-1]}, the classifier "
            f"{classifier.shape[0]}: they come from different embedding spaces"
        )
    z = F.normalize(image_embeds.float(), dim=-1)
    return z @ classifier.to(device=z.device, dtype=z.dtype)


def topk_accuracy(logits: Tensor, labels: Tensor, ks: Sequence[int] = (1, 5)) -> dict[int, float]:
    """``{k: fraction of rows whose label is among the k highest logits}``; k is capped at C."""
    labels = labels.reshape(-1).to(logits.device).long()
    if len(labels) == 0:
        return {k: float("nan") for k in ks}
    order = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    hits = order == labels.unsqueeze(1)
    return {k: hits[:, : min(k, logits.shape[1])].any(dim=1).float().mean().item() for k in ks}


def per_class_accuracy(logits: Tensor, labels: Tensor) -> list[tuple[int, float]]:
    """Per class ``c``: ``(count of samples labelled c, their top-1 accuracy)`` (nan if none)."""
    labels = labels.reshape(-1).to(logits.device).long()
    pred = logits.argmax(dim=1)
    num = logits.shape[1]
    counts = torch.bincount(labels, minlength=num)[:num]
    correct = torch.bincount(labels[pred == labels], minlength=num)[:num]
    return [
        (int(n), (int(c) / int(n)) if int(n) else float("nan"))
        for n, c in zip(counts.tolist(), correct.tolist(), strict=True)
    ]

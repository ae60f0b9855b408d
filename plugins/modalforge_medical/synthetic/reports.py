"""Radiology-style reports of synthetic studies: findings stated in several phrasings, absent
findings negated ("no lesion in the left lobe") or left unmentioned, sentences in random order.

Each report comes with the findings it negates explicitly, so zero-shot results can be measured
on the negation subset separately (a negated finding must never read as a positive).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modalforge_medical.synthetic.anatomy import SIDES, Lesions, LobeLesions

NUMBERS = {1: "a", 2: "two", 3: "three"}
SIZE = {True: ("large", "big"), False: ("small", "tiny")}
INTENSITY = {True: ("bright", "hyperdense"), False: ("faint", "subtle")}

POSITIVE_LOBE = (
    "{n} {size} {tone} {lesions} in the {side} lobe.",
    "the {side} lobe shows {n} {size} {tone} {lesions}.",
    "{side} lobe: {n} {size} {tone} {lesions}.",
)
NEGATIVE_LOBE = (
    "no lesion in the {side} lobe.",
    "the {side} lobe is clear.",
    "no focal lesion in the {side} lobe.",
)
NORMAL = ("no lesions.", "normal study, no lesions.")
MULTIPLE = ("multiple lesions.", "several lesions are seen.")


@dataclass(frozen=True)
class Report:
    """A report's text and the findings it negates explicitly (``left_lesion``, ...)."""

    text: str
    negated: tuple[str, ...]


def write_report(lesions: Lesions, rng: np.random.Generator, negate_prob: float = 0.75) -> Report:
    """A report of ``lesions``; each clear lobe is negated with probability ``negate_prob``."""
    sentences: list[str] = []
    negated: list[str] = []
    for side in SIDES:
        lobe = lesions.lobe(side)
        if lobe.count:
            sentences.append(_describe(lobe, side, rng))
        elif rng.random() < negate_prob:
            sentences.append(str(rng.choice(NEGATIVE_LOBE)).format(side=side))
            negated.append(f"{side}_lesion")
    if lesions.total == 0 and rng.random() < 0.6:
        sentences.append(str(rng.choice(NORMAL)))
    elif lesions.total >= 2 and rng.random() < 0.5:
        sentences.append(str(rng.choice(MULTIPLE)))
    if not sentences:  # a study is never reported with nothing said
        sentences.append(str(rng.choice(NORMAL)))
    rng.shuffle(sentences)
    return Report(" ".join(sentences), tuple(negated))


def _describe(lobe: LobeLesions, side: str, rng: np.random.Generator) -> str:
    return str(rng.choice(POSITIVE_LOBE)).format(
        n=NUMBERS[lobe.count],
        size=rng.choice(SIZE[lobe.large]),
        tone=rng.choice(INTENSITY[lobe.bright]),
        lesions="lesion" if lobe.count == 1 else "lesions",
        side=side,
    )


def lobe_sentences(
    side: str,
    counts: tuple[int, ...],
    large: tuple[bool, ...],
    bright: tuple[bool, ...],
    templates: tuple[str, ...] = POSITIVE_LOBE,
) -> list[str]:
    """Every phrasing of "``n`` lesions in the ``side`` lobe" over the given counts, size and
    intensity classes (each class in both its words) and sentence templates."""
    return [
        template.format(
            n=NUMBERS[n],
            size=size,
            tone=tone,
            lesions="lesion" if n == 1 else "lesions",
            side=side,
        )
        for template in templates
        for n in counts
        for is_large in large
        for size in SIZE[is_large]
        for is_bright in bright
        for tone in INTENSITY[is_bright]
    ]


def finding_prompts() -> dict[str, dict[str, list[str]]]:
    """Zero-shot prompt pairs per finding (CheXzero style), written in the reports' own phrasing.

    Each side of a pair is a prompt ensemble (as CLIP's templates): every way the report grammar
    states a finding, or its absence, marginalised over the attributes the finding is not about
    (sides, counts, sizes, intensities). "Multiple lesions" is a property of the whole study, so
    its prompts also pair sentences about both lobes (one lesion in each is multiple; one lesion
    and a clear other lobe is not). Only the grammar is used: no image and no label.
    """
    both, any_count = (False, True), (1, 2, 3)
    other = {"left": "right", "right": "left"}
    clear = {side: [t.format(side=side) for t in NEGATIVE_LOBE] for side in SIDES}
    prompts = {
        f"{side}_lesion": {
            "positive": lobe_sentences(side, any_count, both, both),
            "negative": clear[side] + list(NORMAL),
        }
        for side in SIDES
    }
    single = {s: lobe_sentences(s, (1,), both, both, POSITIVE_LOBE[:1]) for s in SIDES}
    prompts["multiple_lesions"] = {
        "positive": [p for s in SIDES for p in lobe_sentences(s, (2, 3), both, both)]
        + list(MULTIPLE)
        + [f"{a} {b}" for a in single["left"] for b in single["right"]],
        "negative": [p for s in SIDES for p in lobe_sentences(s, (1,), both, both)]
        + list(NORMAL)
        + [f"{a} {b}" for s in SIDES for a in single[s] for b in clear[other[s]]],
    }
    for finding, attribute in (("large_lesion", "large"), ("bright_lesion", "bright")):
        prompts[finding] = {
            "positive": _attribute_sentences(attribute, True),
            "negative": _attribute_sentences(attribute, False) + list(NORMAL),
        }
    return prompts


def _attribute_sentences(attribute: str, value: bool) -> list[str]:
    """Lesion sentences of either lobe and any count whose ``attribute`` (``large`` or
    ``bright``) is ``value``, the other attribute taking both values."""
    classes = {"large": (False, True), "bright": (False, True), attribute: (value,)}
    return [
        p
        for side in SIDES
        for p in lobe_sentences(side, (1, 2, 3), classes["large"], classes["bright"])
    ]


#: The data set's zero-shot prompt pairs (:func:`finding_prompts`), one entry per finding.
FINDING_PROMPTS: dict[str, dict[str, list[str]]] = finding_prompts()

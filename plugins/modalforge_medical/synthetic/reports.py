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


#: Zero-shot prompt pairs per finding (CheXzero style): positive and negative phrasings, each
#: averaged into one class vector; a finding's score is the softmax of the two similarities.
FINDING_PROMPTS: dict[str, dict[str, list[str]]] = {
    "left_lesion": {
        "positive": ["a lesion in the left lobe.", "the left lobe shows a lesion."],
        "negative": ["no lesion in the left lobe.", "the left lobe is clear."],
    },
    "right_lesion": {
        "positive": ["a lesion in the right lobe.", "the right lobe shows a lesion."],
        "negative": ["no lesion in the right lobe.", "the right lobe is clear."],
    },
    "multiple_lesions": {
        "positive": ["multiple lesions.", "two lesions.", "several lesions are seen."],
        "negative": ["a single lesion.", "no lesions."],
    },
    "large_lesion": {
        "positive": ["a large lesion.", "a big lesion."],
        "negative": ["a small lesion.", "no lesions."],
    },
    "bright_lesion": {
        "positive": ["a bright lesion.", "a hyperdense lesion."],
        "negative": ["a faint lesion.", "no lesions."],
    },
}
